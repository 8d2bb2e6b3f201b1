//! Benchmark of offline render: parse, validate and render `examples/production.yaml`
//! to YAML, many times, and print the mean and 99th percentile per run.
//!
//! `cargo run --release --example render_benchmark [iterations]`

use std::time::{Duration, Instant};

use webtoon_operator::manifest::{parse_stacks, render_yaml, validated};
use webtoon_operator::render::Observed;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args().nth(1).map_or(Ok(2000), |a| a.parse())?;
    let text = include_str!("production.yaml");
    let observed = Observed::default();
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        for stack in parse_stacks("production.yaml", text)? {
            bytes = render_yaml(&validated(&stack)?, &observed)?.len();
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / u32::try_from(iterations)?;
    let p99 = samples[(iterations * 99 / 100).min(iterations - 1)];
    println!(
        "render production.yaml: {iterations} runs, mean {:.1} us, p99 {:.1} us, {bytes} bytes of YAML",
        mean.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    Ok(())
}
