//! Per-call timings of benches whose rows run interleaved round by round:
//! a row's samples, and their medians and percentiles in milliseconds.

use std::time::{Duration, Instant};

pub struct Row {
    pub name: String,
    pub samples: Vec<Duration>,
}

impl Row {
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), samples: Vec::new() }
    }
}

pub fn timed(call: impl FnOnce()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

/// The value at `p` (0 to 1) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The samples in milliseconds, sorted.
pub fn ms(samples: &[Duration]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Print the rows as a Markdown table of median, p95 and minimum.
pub fn print_table(rows: &[Row], rounds: usize) {
    println!("\n{rounds} rounds, per call, in ms:\n");
    println!("| what | median | p95 | min |");
    println!("|---|---|---|---|");
    for row in rows {
        let v = ms(&row.samples);
        println!("| {} | {:.2} | {:.2} | {:.2} |", row.name, percentile(&v, 0.5), percentile(&v, 0.95), v[0]);
    }
}

/// Median and p95 of `call` minus `bare`, round by round, in ms.
pub fn overhead(call: &Row, bare: &Row) -> (f64, f64) {
    let mut d: Vec<f64> = call
        .samples
        .iter()
        .zip(&bare.samples)
        .map(|(c, b)| (c.as_secs_f64() - b.as_secs_f64()) * 1e3)
        .collect();
    d.sort_by(f64::total_cmp);
    (percentile(&d, 0.5), percentile(&d, 0.95))
}
