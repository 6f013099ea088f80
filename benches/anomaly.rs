//! Speed of the anomaly detector: training on a full window and scoring one sample.
//! `cargo bench --bench anomaly` (release build). Under `cargo test` it only checks that
//! it runs, on small sizes: timings from a debug build mean nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use redis_failover_agent::anomaly::detector::{CALIBRATION_POINT, train};
use redis_failover_agent::anomaly::features::{Features, N};

fn samples(n: usize) -> Vec<Features> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut r = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let mut f = [0.0; N];
            for (i, x) in f.iter_mut().enumerate() {
                *x = (i as f64 + 1.0) * 100.0 * (0.8 + 0.4 * r());
            }
            f[12] = 0.3 + 0.05 * r();
            f[13] = 1.2 + 0.1 * r();
            f[14] = 0.9 + 0.05 * r();
            f
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        let model = train(&samples(64), 8).unwrap();
        black_box(model.score(&samples(1)[0], CALIBRATION_POINT));
        println!("anomaly bench: runs (timings only under `cargo bench --bench anomaly`)");
        return;
    }
    let (windows, repeats, scores) = (vec![1024, 4096], 11, 20_000);
    println!("| window x features | trees | training (median of {repeats}) | scoring one sample |");
    println!("|---|---|---|---|");
    for window in windows {
        let data = samples(window);
        for trees in [64, 100] {
            let times: Vec<Duration> = (0..repeats)
                .map(|_| {
                    let t = Instant::now();
                    black_box(train(&data, trees).unwrap());
                    t.elapsed()
                })
                .collect();
            let model = train(&data, trees).unwrap();
            let probe = samples(scores);
            let t = Instant::now();
            for x in &probe {
                black_box(model.score(x, CALIBRATION_POINT));
            }
            let per_score = t.elapsed() / scores as u32;
            println!(
                "| {window} x {N} | {trees} | {:.1} ms | {:.1} µs |",
                median(times).as_secs_f64() * 1000.0,
                per_score.as_secs_f64() * 1e6
            );
        }
    }
}
