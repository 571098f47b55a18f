use criterion::{criterion_group, criterion_main, Criterion};
use fieldauth::body::{parse_body, Expect, STANDARD_KEYS};
use fieldauth_benches::TOKEN_RESPONSE_1K1 as BODY;
use std::hint::black_box;

fn b(c: &mut Criterion) {
    let mut storage = [0u8; 2048];
    c.bench_function("parse_only", |b| {
        b.iter(|| {
            parse_body(
                Expect::Token,
                200,
                STANDARD_KEYS,
                black_box(BODY),
                &mut storage,
            )
            .unwrap()
        })
    });
    let o = parse_body(Expect::Token, 200, STANDARD_KEYS, BODY, &mut storage).unwrap();
    c.bench_function("view_only", |b| {
        b.iter(|| {
            black_box(o)
                .token(black_box(&storage))
                .unwrap()
                .access_token
                .len()
        })
    });
    let small = String::from_utf8(BODY.to_vec()).unwrap();
    let tok = &small[21..921];
    let small = small.replace(tok, "abcdefgh");
    let small = small.as_bytes().to_vec();
    c.bench_function("parse_small_token", |b| {
        b.iter(|| {
            parse_body(
                Expect::Token,
                200,
                STANDARD_KEYS,
                black_box(&small),
                &mut storage,
            )
            .unwrap()
        })
    });
    c.bench_function("new_only", |b| {
        b.iter(|| {
            black_box(fieldauth::body::BodyParser::new(
                Expect::Token,
                200,
                STANDARD_KEYS,
            ))
        })
    });
    let jwt = &BODY[21..921];
    c.bench_function("from_utf8_900", |b| {
        b.iter(|| core::str::from_utf8(black_box(jwt)).unwrap().len())
    });
    c.bench_function("memcpy_900", |b| {
        b.iter(|| {
            let mut d = [0u8; 900];
            d.copy_from_slice(black_box(jwt));
            black_box(d[5])
        })
    });
}
criterion_group!(g, b);
criterion_main!(g);
