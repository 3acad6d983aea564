//! Shared pieces of the property tests: the proptest configuration (fixed
//! seed, no persistence, case counts overridable by `PROPTEST_CASES`) and
//! strategies for arbitrary text and nested JSON values.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value};

/// Seed used unless `PROPTEST_RNG_SEED` is set.
const SEED: u64 = 0x6669_6e61_6c70_696e; // "finalpin"

/// `cases` cases (or `PROPTEST_CASES`), fixed seed (or `PROPTEST_RNG_SEED`),
/// no failure persistence.
pub fn config(cases: u32) -> Config {
    let base = Config::default();
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => base.cases,
        Err(_) => cases,
    };
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        fixed => fixed,
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: None,
        ..base
    }
}

/// Short strings of any characters, control characters and NUL included.
pub fn any_text(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).expect("valid regex"),
        proptest::collection::vec(any::<char>(), 0..=max).prop_map(|c| c.into_iter().collect()),
    ]
    .boxed()
}

/// Floats whose shortest decimal form parses back bit-exactly with
/// serde_json's default (not `float_roundtrip`) parser: `m / 10^e`.
pub fn decimal_float() -> impl Strategy<Value = Value> {
    (-10_000_000i32..10_000_000, 0u32..5)
        .prop_map(|(m, e)| Value::from(f64::from(m) / f64::from(10u32.pow(e))))
}

/// JSON leaves; `float` chooses the float strategy.
pub fn json_leaf(float: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float,
        any_text(16).prop_map(Value::String),
    ]
}

/// Nested JSON values (depth ≤ 4) with the given float strategy.
pub fn json_value_with(float: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    json_leaf(float).prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(any_text(8), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Nested JSON values that round-trip through both codecs bit-exactly.
pub fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(decimal_float().boxed())
}

/// A JSON object of up to `max` variables.
pub fn json_object(max: usize) -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(any_text(8), json_value(), 0..=max)
        .prop_map(|m| m.into_iter().collect())
}
