//! `marketprism-collector`: run, sink, schema, simulate, bench.
fn main() -> anyhow::Result<()> {
    Ok(())
}
