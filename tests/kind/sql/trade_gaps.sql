-- Recorded trade gaps: symbol, start (ms), end (ms), cause.
SELECT symbol, toInt64(toUnixTimestamp64Milli(start_ms)), toInt64(toUnixTimestamp64Milli(end_ms)), cause
FROM marketprism_hot.gaps FINAL
WHERE exchange = 'binance_derivatives' AND data_type = 'trades'
ORDER BY symbol, start_ms
