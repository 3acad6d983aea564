//! Human durations (`duration::HumanDuration`) and emulator reply delays
//! (`emulator::Delay`): parsing never panics on arbitrary or near-valid text,
//! and `Display` output parses back to the same value.

use super::support::{any_text, config};
use finalping::duration::HumanDuration;
use finalping::emulator::Delay;
use proptest::prelude::*;
use std::time::Duration;

/// Largest duration the parser accepts: one year.
const YEAR_US: u64 = 365 * 24 * 3600 * 1_000_000;

/// Whole microseconds (the resolution `Display` shows), biased to round units.
fn human_duration() -> impl Strategy<Value = HumanDuration> {
    prop_oneof![
        0u64..=YEAR_US,
        (0u64..=YEAR_US / 1000).prop_map(|ms| ms * 1000),
        (0u64..=365 * 24 * 3600).prop_map(|s| s * 1_000_000),
        (0u64..=365 * 24).prop_map(|h| h * 3_600_000_000),
    ]
    .prop_map(|us| HumanDuration(Duration::from_micros(us)))
}

fn delay() -> impl Strategy<Value = Delay> {
    let leaf = prop_oneof![
        human_duration().prop_map(Delay::Fixed),
        (human_duration(), human_duration()).prop_map(|(a, b)| Delay::Uniform {
            min: a.min(b),
            max: a.max(b),
        }),
        (human_duration(), human_duration()).prop_map(|(mean, sd)| Delay::Normal { mean, sd }),
        (human_duration(), 0.0f64..=10.0)
            .prop_map(|(median, sigma)| Delay::LogNormal { median, sigma }),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        (0.0f64..=1.0, inner.clone(), inner).prop_map(|(p, first, second)| Delay::Bimodal {
            p,
            first: Box::new(first),
            second: Box::new(second),
        })
    })
}

/// Text close to a duration: number, blanks, unit-ish suffix.
fn duration_like() -> impl Strategy<Value = String> {
    (
        "[ ]{0,2}",
        prop_oneof![
            "[0-9]{0,20}(\\.[0-9]{0,20})?",
            "[0-9.]{1,8}",
            any::<f64>().prop_map(|f| f.to_string()),
        ],
        "[ ]{0,2}",
        prop_oneof![
            proptest::sample::select(vec!["us", "µs", "ms", "s", "sec", "m", "min", "h", ""])
                .prop_map(str::to_string),
            any_text(4),
        ],
    )
        .prop_map(|(a, n, b, u)| format!("{a}{n}{b}{u}"))
}

/// Text close to a delay expression.
fn delay_like() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        duration_like(),
        "-?[0-9]{0,3}(\\.[0-9]{0,4})?(e[+-]?[0-9]{1,3})?",
        Just("nan".to_string()),
        Just("inf".to_string()),
    ];
    atom.prop_recursive(4, 16, 3, |inner| {
        (
            proptest::sample::select(vec![
                "fixed",
                "uniform",
                "normal",
                "lognormal",
                "bimodal",
                "",
                "x",
            ]),
            proptest::collection::vec(inner, 0..4),
            proptest::sample::select(vec![")", "", "))", "("]),
        )
            .prop_map(|(name, args, close)| format!("{name}({}{close}", args.join(",")))
    })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn duration_parse_never_panics(s in prop_oneof![any_text(24), duration_like()]) {
        if let Ok(d) = s.parse::<HumanDuration>() {
            prop_assert!(d.0 <= Duration::from_micros(YEAR_US), "{s:?} → {d:?}");
            // Display is a fixed point after one parse.
            let shown = d.to_string();
            let again: HumanDuration = shown.parse().map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
            prop_assert_eq!(again.to_string(), shown);
        }
    }

    #[test]
    fn duration_display_round_trips(d in human_duration()) {
        let shown = d.to_string();
        let back: HumanDuration = shown.parse().map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
        prop_assert_eq!(back, d, "{}", shown);
    }

    #[test]
    fn delay_parse_never_panics(s in prop_oneof![any_text(40), delay_like()]) {
        let _ = s.parse::<Delay>();
    }

    #[test]
    fn delay_display_round_trips(d in delay()) {
        let shown = d.to_string();
        let back: Delay = shown.parse().map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
        prop_assert_eq!(back, d, "{}", shown);
    }
}

#[test]
fn deeply_nested_delays_are_errors() {
    let deep = format!(
        "{}50ms{}",
        "bimodal(0.5, 1ms, ".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(deep.parse::<Delay>().is_err());
}
