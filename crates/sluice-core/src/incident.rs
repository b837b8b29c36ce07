//! Incident choices, labels and the priority matrix (servicenow-wire.md §5).

pub const STATE_NEW: &str = "1";
pub const STATE_IN_PROGRESS: &str = "2";
pub const STATE_ON_HOLD: &str = "3";
pub const STATE_RESOLVED: &str = "6";
pub const STATE_CLOSED: &str = "7";
pub const STATE_CANCELED: &str = "8";

pub const STATES: &[(&str, &str)] = &[
    (STATE_NEW, "New"),
    (STATE_IN_PROGRESS, "In Progress"),
    (STATE_ON_HOLD, "On Hold"),
    (STATE_RESOLVED, "Resolved"),
    (STATE_CLOSED, "Closed"),
    (STATE_CANCELED, "Canceled"),
];

/// Impact, urgency and severity share these values and labels.
pub const LEVELS: &[(&str, &str)] = &[("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")];

pub const PRIORITIES: &[(&str, &str)] =
    &[("1", "1 - Critical"), ("2", "2 - High"), ("3", "3 - Moderate"), ("4", "4 - Low"), ("5", "5 - Planning")];

pub const HOLD_REASONS: &[(&str, &str)] =
    &[("1", "Awaiting Caller"), ("3", "Awaiting Problem"), ("4", "Awaiting Vendor"), ("5", "Awaiting Change")];

pub const CATEGORIES: &[(&str, &str)] = &[
    ("inquiry", "Inquiry / Help"),
    ("software", "Software"),
    ("hardware", "Hardware"),
    ("network", "Network"),
    ("database", "Database"),
];

pub const CONTACT_TYPES: &[(&str, &str)] = &[
    ("email", "Email"),
    ("phone", "Phone"),
    ("self-service", "Self-service"),
    ("walk-in", "Walk-in"),
    ("chat", "Chat"),
    ("virtual_agent", "Virtual Agent"),
    ("monitoring", "Monitoring"),
];

pub const CLOSE_CODES: &[(&str, &str)] = &[
    ("Duplicate", "Duplicate"),
    ("Known error", "Known error"),
    ("No resolution provided", "No resolution provided"),
    ("Resolved by caller", "Resolved by caller"),
    ("Resolved by change", "Resolved by change"),
    ("Resolved by problem", "Resolved by problem"),
    ("Resolved by request", "Resolved by request"),
    ("Solution provided", "Solution provided"),
    ("Workaround provided", "Workaround provided"),
    ("User error", "User error"),
    // The legacy list, still sent by older integrations (the servicenow.itsm Ansible collection).
    ("Solved (Work Around)", "Solved (Work Around)"),
    ("Solved (Permanently)", "Solved (Permanently)"),
    ("Solved Remotely (Work Around)", "Solved Remotely (Work Around)"),
    ("Solved Remotely (Permanently)", "Solved Remotely (Permanently)"),
    ("Not Solved (Not Reproducible)", "Not Solved (Not Reproducible)"),
    ("Not Solved (Too Costly)", "Not Solved (Too Costly)"),
    ("Closed/Resolved by Caller", "Closed/Resolved by Caller"),
];

pub const DEFAULT_IMPACT: u8 = 3;
pub const DEFAULT_URGENCY: u8 = 3;

/// ServiceNow's default priority lookup: impact × urgency → priority (1 Critical … 5 Planning).
/// Out-of-range inputs are clamped to the matrix, so a priority is always defined.
pub fn priority(impact: u8, urgency: u8) -> u8 {
    let i = impact.clamp(1, 3);
    let u = urgency.clamp(1, 3);
    i + u - 1
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn priority_matrix_matches_servicenow_defaults() {
        let expected = [
            ((1, 1), 1),
            ((1, 2), 2),
            ((1, 3), 3),
            ((2, 1), 2),
            ((2, 2), 3),
            ((2, 3), 4),
            ((3, 1), 3),
            ((3, 2), 4),
            ((3, 3), 5),
        ];
        for ((i, u), p) in expected {
            assert_eq!(priority(i, u), p, "impact {i} urgency {u}");
        }
    }

    #[test]
    fn defaults_give_planning_priority() {
        assert_eq!(priority(super::DEFAULT_IMPACT, super::DEFAULT_URGENCY), 5);
    }
}
