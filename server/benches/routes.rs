//! Routing-key matching with 10,000 rules: the cost of matching one key should be on
//! the order of a microsecond, independent of the number of rules.
//! `cargo bench -p server --bench routes`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use server::routes::matcher::Matcher;

fn rules(count: usize) -> Matcher {
    let mut matcher = Matcher::new();
    for i in 0..count {
        // A realistic mix: exact keys, one-word and multi-word wildcards.
        let pattern = match i % 4 {
            0 => format!("orders.region{}.created", i),
            1 => format!("orders.*.type{}", i),
            2 => format!("events{}.#", i),
            _ => format!("#.tenant{}", i),
        };
        matcher.insert(i as u64, &pattern);
    }
    matcher
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_match");
    for count in [100usize, 10_000] {
        let matcher = rules(count);
        group.bench_function(format!("{count}_rules"), |b| {
            b.iter(|| black_box(matcher.matches(black_box("orders.region42.created"))))
        });
        group.bench_function(format!("{count}_rules_6_words"), |b| {
            b.iter(|| black_box(matcher.matches(black_box("orders.eu.west.fast.type9.tenant77"))))
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
