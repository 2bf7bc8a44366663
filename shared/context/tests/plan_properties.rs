//! Properties of the planner over random histories, limits and settings.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::ops::Range;

use bestchat_context::plan::{cost, turns};
use bestchat_context::tokens::{MESSAGE_OVERHEAD_TOKENS, REQUEST_OVERHEAD_TOKENS, estimate};
use bestchat_context::{
    ContextSettings, Entry, Limits, Plan, PlanError, PlanInput, SummaryRef, plan,
};
use bestchat_domain::context::Strategy as Applied;
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::Role;
use proptest::prelude::*;
use uuid::Uuid;

/// Blocks that recur across a history, so compression has something to find.
fn shared_block(n: usize) -> String {
    format!(
        "```rust\n{}```",
        format!("fn shared_{n}() {{ let x = {n}; }}\n").repeat(30)
    )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z ]{1,300}",
        1 => (0usize..3).prop_map(|n| format!("see this:\n{}", shared_block(n))),
        1 => (0usize..3).prop_map(shared_block),
    ]
}

fn tool_output() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 ]{1,200}",
        1 => (100usize..3000).prop_map(|n| "tool output line\n".repeat(n)),
        1 => (0usize..3).prop_map(shared_block),
    ]
}

/// One turn: a user message, then an answer, possibly after tool calls and their results.
fn turn() -> impl Strategy<Value = Vec<(Role, String)>> {
    (
        text(),
        prop::collection::vec(prop::collection::vec(tool_output(), 1..3), 0..3),
        text(),
    )
        .prop_map(|(question, loops, answer)| {
            let mut out = vec![(Role::User, question)];
            for results in loops {
                out.push((Role::Assistant, "calling a tool".to_owned()));
                out.extend(results.into_iter().map(|r| (Role::Tool, r)));
            }
            out.push((Role::Assistant, answer));
            out
        })
}

#[derive(Debug, Clone)]
struct Case {
    history: Vec<(Role, String)>,
    system_tokens: u32,
    limits: Limits,
    settings: ContextSettings,
    /// Where a stored summary ends (an index into the history) and its size.
    summary: Option<(usize, u32)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(turn(), 1..30),
        any::<bool>(),
        0u32..400,
        300u32..30_000,
        0u32..60,
        (
            50u32..5_000,
            20u32..400,
            50usize..800,
            10u32..100,
            10u32..90,
        ),
        (any::<prop::sample::Index>(), 10u32..2_000, any::<bool>()),
    )
        .prop_map(
            |(turns, drop_last_answer, system_tokens, window, reserved_pct, s, summary)| {
                let mut history: Vec<(Role, String)> = turns.into_iter().flatten().collect();
                // The turn being answered ends with its user message.
                if drop_last_answer || history.last().is_some_and(|m| m.0 != Role::User) {
                    while history.last().is_some_and(|m| m.0 != Role::User) {
                        history.pop();
                    }
                }
                let settings = ContextSettings {
                    tool_output_max_tokens: s.0,
                    tool_output_keep_tokens: s.1.min(s.0),
                    duplicate_min_chars: s.2,
                    summarize_at_percent: s.3,
                    summary_keeps_recent_percent: s.4,
                    ..ContextSettings::default()
                };
                let summary = summary
                    .2
                    .then(|| (summary.0.index(history.len()), summary.1));
                Case {
                    history,
                    system_tokens,
                    limits: Limits {
                        window,
                        reserved_output: window * reserved_pct / 100,
                    },
                    settings,
                    summary,
                }
            },
        )
}

fn ids(n: usize) -> Vec<MessageId> {
    (0..n)
        .map(|i| MessageId::from_uuid(Uuid::from_u128(i as u128 + 1)))
        .collect()
}

fn run(case: &Case) -> (Vec<Entry<'_>>, Result<Plan, PlanError>) {
    let ids = ids(case.history.len());
    let entries: Vec<Entry<'_>> = case
        .history
        .iter()
        .zip(&ids)
        .map(|((role, content), id)| Entry {
            id: *id,
            role: *role,
            content,
            tokens: estimate(content),
        })
        .collect();
    let summary = case.summary.map(|(at, tokens)| SummaryRef {
        through: entries[at].id,
        tokens,
    });
    let input = PlanInput {
        system_tokens: case.system_tokens,
        entries: &entries,
        summary,
        limits: case.limits,
        settings: &case.settings,
    };
    let result = plan(&input, &estimate);
    (entries, result)
}

fn turn_of(turns: &[Range<usize>], i: usize) -> usize {
    turns.iter().position(|t| t.contains(&i)).unwrap()
}

/// The last turn a summary through entry `at` stands for, when it is between the first and the
/// latest turn.
fn covered_turn(turns: &[Range<usize>], at: usize) -> Option<usize> {
    let k = turns.iter().rposition(|t| t.end <= at + 1)?;
    (k >= 1 && k + 1 < turns.len()).then_some(k)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_same_input_gives_the_same_plan(case in case()) {
        let (_, a) = run(&case);
        let (_, b) = run(&case);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn every_plan_fits_and_keeps_its_promises(case in case()) {
        let (entries, result) = run(&case);
        let budget = case.limits.budget(&case.settings);
        let turns = turns(&entries);
        let fixed = case.system_tokens + REQUEST_OVERHEAD_TOKENS;
        let latest = turns.last().unwrap().clone();
        let raw_latest: u32 = latest.clone().map(|i| cost(entries[i].tokens)).sum();
        let plan = match result {
            Err(PlanError::TooLarge { needed, budget: b }) => {
                prop_assert_eq!(b, budget);
                prop_assert!(needed > budget);
                // Compression only shrinks: the latest turn as stored did not fit either.
                prop_assert!(fixed + raw_latest >= needed);
                return Ok(());
            }
            Ok(plan) => plan,
        };
        // It fits, by the plan's own account and by recounting what is sent.
        prop_assert!(plan.tokens_after <= budget, "{} > {}", plan.tokens_after, budget);
        let summary_tokens = case.summary.map_or(0, |s| s.1);
        let recount: u32 = fixed
            + if plan.use_summary { summary_tokens } else { 0 }
            + plan.messages.iter().map(|p| match &p.content {
                Some(c) => estimate(c) + MESSAGE_OVERHEAD_TOKENS,
                None => cost(entries[p.index].tokens),
            }).sum::<u32>();
        prop_assert_eq!(recount, plan.tokens_after);
        // In order, the latest message last, the latest turn whole.
        prop_assert!(plan.messages.windows(2).all(|w| w[0].index < w[1].index));
        prop_assert_eq!(plan.messages.last().map(|p| p.index), Some(entries.len() - 1));
        let sent: Vec<bool> = (0..entries.len())
            .map(|i| plan.messages.iter().any(|p| p.index == i))
            .collect();
        prop_assert!(latest.clone().all(|i| sent[i]));
        // Turns go whole: a tool call never without its results.
        for t in &turns {
            prop_assert!(t.clone().all(|i| sent[i]) || t.clone().all(|i| !sent[i]));
        }
        // A compressed message is shorter than it was.
        for p in &plan.messages {
            if let Some(c) = &p.content {
                prop_assert!(estimate(c) < entries[p.index].tokens);
            }
        }
        // The first exchange goes unless even it and the latest turn cannot fit together.
        if turns.len() > 1 && !sent[turns[0].start] {
            let raw_first: u32 = turns[0].clone().map(|i| cost(entries[i].tokens)).sum();
            prop_assert!(plan.tokens_after + raw_first > budget);
        }
        // Dropped turns are the oldest: the middle turns sent are the newest ones.
        let kept_middle: Vec<usize> = (1..turns.len().saturating_sub(1))
            .filter(|&t| sent[turns[t].start])
            .collect();
        if let (Some(first), Some(last)) = (kept_middle.first(), kept_middle.last()) {
            prop_assert_eq!(kept_middle.len(), last - first + 1);
            prop_assert_eq!(*last, turns.len() - 2);
        }
        // The summary stands for the turns it covers, which are then not sent.
        let truncated = plan.optimizations.iter().any(|o| o.strategy == Applied::Truncation);
        if plan.use_summary {
            let (at, _) = case.summary.unwrap();
            let k = covered_turn(&turns, at);
            prop_assert!(k.is_some());
            for t in &turns[1..=k.unwrap()] {
                prop_assert!(t.clone().all(|i| !sent[i]));
            }
        } else if truncated
            && let Some((at, tokens)) = case.summary
            && covered_turn(&turns, at).is_some()
        {
            prop_assert!(plan.tokens_after + tokens > budget);
        }
        // The records chain from the full history to what is sent.
        if plan.optimizations.is_empty() {
            prop_assert_eq!(plan.tokens_before, plan.tokens_after);
            prop_assert!(sent.iter().all(|s| *s));
        } else {
            prop_assert_eq!(plan.optimizations[0].tokens_before, plan.tokens_before);
            for w in plan.optimizations.windows(2) {
                prop_assert_eq!(w[0].tokens_after, w[1].tokens_before);
            }
            prop_assert_eq!(plan.optimizations.last().unwrap().tokens_after, plan.tokens_after);
            prop_assert!(plan.optimizations.iter().all(|o| o.messages_affected > 0));
        }
        // A requested summary covers whole turns between the first exchange and the latest.
        if let Some(span) = &plan.summarize {
            let from = entries.iter().position(|e| e.id == span.from).unwrap();
            let through = entries.iter().position(|e| e.id == span.through).unwrap();
            prop_assert!(from <= through);
            let (tf, tt) = (turn_of(&turns, from), turn_of(&turns, through));
            prop_assert!(tf >= 1 && tt + 1 < turns.len());
            prop_assert_eq!(turns[tf].start, from);
            prop_assert_eq!(turns[tt].end, through + 1);
        }
    }
}

/// A history that fits is sent untouched.
#[test]
fn a_history_that_fits_is_sent_as_is() {
    let case = Case {
        history: vec![
            (Role::User, "hello".into()),
            (Role::Assistant, "hi".into()),
            (Role::User, "how are you".into()),
        ],
        system_tokens: 10,
        limits: Limits {
            window: 10_000,
            reserved_output: 1_000,
        },
        settings: ContextSettings::default(),
        summary: None,
    };
    let (_, plan) = run(&case);
    let plan = plan.unwrap();
    assert_eq!(plan.messages.len(), 3);
    assert!(plan.messages.iter().all(|p| p.content.is_none()));
    assert!(plan.optimizations.is_empty());
    assert!(plan.summarize.is_none());
}

/// An older copy of a block repeated later is replaced by a note; the newer copy stays.
#[test]
fn the_older_copy_of_repeated_content_becomes_a_note() {
    let block = shared_block(7);
    let mut history = vec![(Role::User, "first".into()), (Role::Assistant, "ok".into())];
    history.push((Role::User, format!("here is the file\n{block}")));
    history.push((Role::Assistant, "noted".into()));
    history.push((Role::User, format!("again:\n{block}\nwhat changed?")));
    let total: u32 = history.iter().map(|(_, c)| estimate(c) + 4).sum();
    let case = Case {
        history,
        system_tokens: 0,
        limits: Limits {
            window: total,
            reserved_output: 0,
        },
        settings: ContextSettings {
            margin_min_tokens: 0,
            margin_percent: 0,
            ..ContextSettings::default()
        },
        summary: None,
    };
    let (_, plan) = run(&case);
    let plan = plan.unwrap();
    let older = plan.messages.iter().find(|p| p.index == 2).unwrap();
    let note = older.content.as_deref().unwrap();
    assert!(note.starts_with("here is the file\n["), "{note}");
    assert!(note.contains("the same content appears later"));
    assert!(
        plan.messages
            .iter()
            .find(|p| p.index == 4)
            .unwrap()
            .content
            .is_none()
    );
    assert_eq!(plan.optimizations.len(), 1);
    assert_eq!(plan.optimizations[0].strategy, Applied::Compression);
    assert_eq!(plan.messages.len(), 5, "nothing dropped once compressed");
}

/// Too large a latest message fails with the numbers, before any provider sees it.
#[test]
fn a_latest_message_over_the_budget_is_too_large() {
    let case = Case {
        history: vec![(Role::User, "word ".repeat(2_000))],
        system_tokens: 0,
        limits: Limits {
            window: 1_500,
            reserved_output: 200,
        },
        settings: ContextSettings::default(),
        summary: None,
    };
    let (_, plan) = run(&case);
    match plan {
        Err(PlanError::TooLarge { needed, budget }) => {
            assert_eq!(budget, 1_270);
            assert!(needed > 2_000);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// The generator reaches every path the properties are about.
#[test]
fn random_cases_exercise_every_strategy() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut compressed, mut summarized, mut truncated, mut too_large, mut requested) =
        (0, 0, 0, 0, 0);
    for _ in 0..400 {
        let case = case().new_tree(&mut runner).unwrap().current();
        match run(&case).1 {
            Err(_) => too_large += 1,
            Ok(plan) => {
                for o in &plan.optimizations {
                    match o.strategy {
                        Applied::Compression => compressed += 1,
                        Applied::Summarization => summarized += 1,
                        Applied::Truncation => truncated += 1,
                    }
                }
                requested += usize::from(plan.summarize.is_some());
            }
        }
    }
    for (what, n) in [
        ("compression", compressed),
        ("summary use", summarized),
        ("truncation", truncated),
        ("too large", too_large),
        ("summary request", requested),
    ] {
        assert!(n >= 5, "{what} happened only {n} times in 400 cases");
    }
}
