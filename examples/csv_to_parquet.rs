//! Converts a listing CSV into Parquet (`price` Float64, other columns Utf8), e.g. to
//! benchmark knockoff-score on Parquet input:
//! `cargo run --release --example csv_to_parquet -- listings.csv listings.parquet`.

#[path = "../tests/common/parquet.rs"]
mod parquet_file;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, parquet] = args.as_slice() else {
        return Err("usage: csv_to_parquet INPUT.csv OUTPUT.parquet".into());
    };
    let rows = parquet_file::csv_to_parquet(csv.as_ref(), parquet.as_ref())?;
    eprintln!("wrote {rows} rows to {parquet}");
    Ok(())
}
