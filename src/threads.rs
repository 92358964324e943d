//! Worker-thread count for the binaries: one number that rayon and candle both read.

/// Sets `RAYON_NUM_THREADS` to `requested`, or, when neither is given, to the number of
/// cores rayon would use anyway. Call first thing in `main`, before any thread starts.
///
/// candle looks its thread count up on every matrix product, and without this variable it
/// reads `/proc/cpuinfo` to do so: for the server's small batches that read cost more than
/// the product itself (measured with `perf`).
pub fn set_worker_threads(requested: Option<usize>) {
    let threads = match requested {
        Some(n) => n.max(1),
        None if std::env::var_os("RAYON_NUM_THREADS").is_some() => return,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
}
