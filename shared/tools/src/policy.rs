//! Who decides a call: the user's rules per risk class and per tool, and a cap on calls
//! approved without asking in one turn. The risk comes from the tool's manifest, never from
//! the model; `destructive` always asks, whatever the rules say.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Risk, ToolName};

/// Most calls a user may let run without asking in one turn.
pub const MAX_AUTO_PER_TURN_CEILING: u32 = 100;
/// Per-tool rules one user may keep.
pub const MAX_TOOL_RULES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Auto,
    Ask,
    Deny,
}

/// Rules per risk class, every class present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskRules {
    pub read: Rule,
    pub write: Rule,
    pub network: Rule,
    pub exec: Rule,
    pub destructive: Rule,
}

impl RiskRules {
    pub fn of(&self, risk: Risk) -> Rule {
        match risk {
            Risk::Read => self.read,
            Risk::Write => self.write,
            Risk::Network => self.network,
            Risk::Exec => self.exec,
            Risk::Destructive => self.destructive,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoApproval {
    pub risk: RiskRules,
    /// Overrides of the risk rule, by tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, Rule>,
    pub max_auto_per_turn: u32,
}

impl Default for AutoApproval {
    /// `read` runs without asking; everything else asks.
    fn default() -> Self {
        Self {
            risk: RiskRules {
                read: Rule::Auto,
                write: Rule::Ask,
                network: Rule::Ask,
                exec: Rule::Ask,
                destructive: Rule::Ask,
            },
            tools: BTreeMap::new(),
            max_auto_per_turn: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("destructive can never be auto: such calls always ask")]
    DestructiveAuto,
    #[error("max_auto_per_turn must be at most {MAX_AUTO_PER_TURN_CEILING}")]
    TooManyAuto,
    #[error("at most {MAX_TOOL_RULES} per-tool rules")]
    TooManyRules,
    #[error("{0:?} is not a tool name")]
    ToolName(String),
}

impl AutoApproval {
    /// The rules as a user may set them.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.risk.destructive == Rule::Auto {
            return Err(PolicyError::DestructiveAuto);
        }
        if self.max_auto_per_turn > MAX_AUTO_PER_TURN_CEILING {
            return Err(PolicyError::TooManyAuto);
        }
        if self.tools.len() > MAX_TOOL_RULES {
            return Err(PolicyError::TooManyRules);
        }
        match self
            .tools
            .keys()
            .find(|name| ToolName::parse(name).is_err())
        {
            Some(bad) => Err(PolicyError::ToolName(bad.clone())),
            None => Ok(()),
        }
    }

    /// What happens to a call of `tool` (of `risk`) when `auto_so_far` calls of this turn ran
    /// without asking, and which rule said so (recorded with the decision).
    pub fn decide(&self, tool: &str, risk: Risk, auto_so_far: u32) -> Decision {
        let (rule, by) = match self.tools.get(tool) {
            Some(rule) => (*rule, format!("tool:{tool}")),
            None => (self.risk.of(risk), format!("risk:{}", risk.as_str())),
        };
        match rule {
            Rule::Deny => Decision::new(Rule::Deny, by),
            Rule::Ask => Decision::new(Rule::Ask, by),
            Rule::Auto if risk == Risk::Destructive => {
                Decision::new(Rule::Ask, "destructive:always_ask".into())
            }
            Rule::Auto if auto_so_far >= self.max_auto_per_turn => {
                Decision::new(Rule::Ask, "max_auto_per_turn".into())
            }
            Rule::Auto => Decision::new(Rule::Auto, by),
        }
    }
}

/// How far a rule holds a call back: refusing is stricter than asking, asking than running.
const fn strictness(rule: Rule) -> u8 {
    match rule {
        Rule::Auto => 0,
        Rule::Ask => 1,
        Rule::Deny => 2,
    }
}

/// The decision of the user's rules within the operator's ceilings for the user's roles (each
/// as rules of the same shape): a role allows what the most permissive of the user's roles
/// allows, and the user's own rules only narrow it. No ceilings: the user's rules alone.
pub fn decide_within(
    user: &AutoApproval,
    ceilings: &[AutoApproval],
    tool: &str,
    risk: Risk,
    auto_so_far: u32,
) -> Decision {
    let mine = user.decide(tool, risk, auto_so_far);
    let Some(theirs) = ceilings
        .iter()
        .map(|c| c.decide(tool, risk, auto_so_far))
        .min_by_key(|d| strictness(d.rule))
    else {
        return mine;
    };
    if strictness(theirs.rule) > strictness(mine.rule) {
        Decision::new(theirs.rule, format!("role:{}", theirs.by))
    } else {
        mine
    }
}

/// A policy decision: run, ask the user, or refuse; and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub rule: Rule,
    pub by: String,
}

impl Decision {
    fn new(rule: Rule, by: String) -> Self {
        Self { rule, by }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_roles_ceiling_narrows_the_users_rules_and_the_most_permissive_role_counts() {
        let mut user = AutoApproval::default();
        user.risk.network = Rule::Auto;
        let mut staff = AutoApproval::default();
        staff.risk.network = Rule::Ask;
        staff.risk.exec = Rule::Deny;
        staff.tools.insert("shell".into(), Rule::Deny);
        let decide =
            |ceilings: &[AutoApproval], tool, risk| decide_within(&user, ceilings, tool, risk, 0);
        assert_eq!(decide(&[], "fetch", Risk::Network).rule, Rule::Auto);
        let narrowed = decide(std::slice::from_ref(&staff), "fetch", Risk::Network);
        assert_eq!(
            narrowed,
            Decision::new(Rule::Ask, "role:risk:network".into())
        );
        assert_eq!(
            decide(std::slice::from_ref(&staff), "run", Risk::Exec).rule,
            Rule::Deny
        );
        assert_eq!(
            decide(std::slice::from_ref(&staff), "shell", Risk::Read).rule,
            Rule::Deny,
            "a tool the role may not use is refused whatever its risk"
        );
        assert_eq!(
            decide(std::slice::from_ref(&staff), "calculator", Risk::Read).rule,
            Rule::Auto,
            "within the ceiling the user's rule stands"
        );
        let mut admin = AutoApproval::default();
        admin.risk.exec = Rule::Auto;
        admin.risk.network = Rule::Auto;
        assert_eq!(
            decide(&[staff.clone(), admin], "run", Risk::Exec).rule,
            Rule::Ask,
            "the most permissive role allows exec; the user's own rule still asks"
        );
        let mut strict_user = AutoApproval::default();
        strict_user.risk.read = Rule::Deny;
        assert_eq!(
            decide_within(
                &strict_user,
                &[AutoApproval::default()],
                "calculator",
                Risk::Read,
                0
            )
            .rule,
            Rule::Deny,
            "the user's rules only narrow"
        );
    }

    fn with(tools: &[(&str, Rule)], risk_read: Rule) -> AutoApproval {
        let mut policy = AutoApproval::default();
        policy.risk.read = risk_read;
        policy.tools = tools.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect();
        policy
    }

    #[test]
    fn defaults_run_reads_and_ask_for_the_rest() {
        let p = AutoApproval::default();
        assert_eq!(
            p.decide("calculator", Risk::Read, 0),
            Decision::new(Rule::Auto, "risk:read".into())
        );
        for risk in [Risk::Write, Risk::Network, Risk::Exec, Risk::Destructive] {
            assert_eq!(p.decide("t", risk, 0).rule, Rule::Ask, "{risk:?}");
        }
    }

    #[test]
    fn a_tool_rule_overrides_its_risk_but_never_makes_destructive_auto() {
        let p = with(
            &[
                ("http_fetch", Rule::Auto),
                ("calculator", Rule::Deny),
                ("wipe", Rule::Auto),
            ],
            Rule::Auto,
        );
        assert_eq!(
            p.decide("http_fetch", Risk::Network, 0),
            Decision::new(Rule::Auto, "tool:http_fetch".into())
        );
        assert_eq!(
            p.decide("calculator", Risk::Read, 0),
            Decision::new(Rule::Deny, "tool:calculator".into())
        );
        assert_eq!(
            p.decide("wipe", Risk::Destructive, 0),
            Decision::new(Rule::Ask, "destructive:always_ask".into())
        );
    }

    #[test]
    fn the_per_turn_cap_turns_auto_into_ask() {
        let mut p = AutoApproval {
            max_auto_per_turn: 2,
            ..AutoApproval::default()
        };
        assert_eq!(p.decide("calculator", Risk::Read, 1).rule, Rule::Auto);
        assert_eq!(
            p.decide("calculator", Risk::Read, 2),
            Decision::new(Rule::Ask, "max_auto_per_turn".into())
        );
        p.max_auto_per_turn = 0;
        assert_eq!(p.decide("calculator", Risk::Read, 0).rule, Rule::Ask);
    }

    #[test]
    fn settings_a_user_may_not_keep_are_refused() {
        let mut p = AutoApproval::default();
        p.risk.destructive = Rule::Auto;
        assert_eq!(p.check(), Err(PolicyError::DestructiveAuto));
        let p = AutoApproval {
            max_auto_per_turn: 101,
            ..AutoApproval::default()
        };
        assert_eq!(p.check(), Err(PolicyError::TooManyAuto));
        let p = with(&[("Not A Name", Rule::Ask)], Rule::Auto);
        assert!(matches!(p.check(), Err(PolicyError::ToolName(_))));
        assert_eq!(AutoApproval::default().check(), Ok(()));
        let partial = json!({"risk": {"read": "auto"}, "max_auto_per_turn": 1});
        assert!(
            serde_json::from_value::<AutoApproval>(partial).is_err(),
            "every class is named"
        );
    }
}
