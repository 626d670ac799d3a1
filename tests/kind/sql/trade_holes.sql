-- Holes in Binance trade ids (numeric, per symbol consecutive): symbol, id before, id after, their ts (ms).
SELECT symbol, prev_id, id, toInt64(toUnixTimestamp64Milli(prev_ts)), toInt64(toUnixTimestamp64Milli(ts))
FROM (
    SELECT symbol, toUInt64OrZero(trade_id) AS id, ts_ms AS ts,
           lagInFrame(toUInt64OrZero(trade_id)) OVER w AS prev_id, lagInFrame(ts_ms) OVER w AS prev_ts
    FROM marketprism_hot.trades FINAL
    WHERE exchange = 'binance_derivatives'
    WINDOW w AS (PARTITION BY symbol ORDER BY toUInt64OrZero(trade_id) ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WHERE prev_id != 0 AND id != prev_id + 1
ORDER BY symbol, id
