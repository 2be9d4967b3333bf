//! Why a schedule, duration or zone name was refused.
//!
//! Each message quotes what was written and says what to write instead: the
//! person reading it is editing a pipeline file, not reading our code.

/// A schedule, duration or time zone name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Nothing but whitespace was written.
    #[error(
        "the schedule is empty: write a cron expression such as `0 3 * * *`, a macro such as `@daily`, \
         or an interval such as `every 6h`"
    )]
    Empty,
    /// A cron expression without exactly five fields.
    #[error(
        "`{text}`: a cron expression has 5 fields (minute hour day-of-month month day-of-week), found {found}{hint}",
        hint = field_count_hint(*.found)
    )]
    FieldCount {
        /// The schedule as written.
        text: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// A number or name outside its field's range.
    #[error("`{text}`: {field} {value} is out of range {range}")]
    OutOfRange {
        /// The schedule as written.
        text: String,
        /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What the field takes, e.g. `0-59` or `1-12 or JAN-DEC`.
        range: &'static str,
    },
    /// A list item that is neither `*`, a value, a range nor a step.
    #[error(
        "`{text}`: {field} `{item}` is not understood; write `*`, a value in {range}, a range such as `1-5`, \
         a list such as `1,15` or a step such as `*/10` (no `?`, `L`, `W` or `#`)"
    )]
    BadItem {
        /// The schedule as written.
        text: String,
        /// The field the item is in.
        field: &'static str,
        /// The comma-separated item as written.
        item: String,
        /// What the field takes.
        range: &'static str,
    },
    /// A `/STEP` that is not a whole number of at least 1.
    #[error("`{text}`: {field} step `{item}` needs a whole number of at least 1 after `/`, as in `*/15`")]
    BadStep {
        /// The schedule as written.
        text: String,
        /// The field the step is in.
        field: &'static str,
        /// The item holding the step, as written.
        item: String,
    },
    /// A range whose end comes before its start.
    #[error(
        "`{text}`: {field} range `{item}` runs backwards; write the smaller value first, \
         or a list such as `22-23,0-3` to wrap around"
    )]
    Backwards {
        /// The schedule as written.
        text: String,
        /// The field the range is in.
        field: &'static str,
        /// The range as written.
        item: String,
    },
    /// A cron expression that no date matches, so a daemon would wait forever.
    #[error("`{text}` can never run: {reason}")]
    NeverRuns {
        /// The schedule as written.
        text: String,
        /// Which months lack which days, e.g. `February has no day 30`.
        reason: String,
    },
    /// An `@…` word that is not one of the macros.
    #[error(
        "`{text}` is not a schedule macro; use @hourly, @daily (or @midnight), @weekly, @monthly \
         or @yearly (or @annually), or a cron expression such as `0 3 * * *`"
    )]
    UnknownMacro {
        /// The schedule as written.
        text: String,
    },
    /// An `every …` schedule whose interval cannot be read.
    #[error(
        "`{text}`: {problem}; write `every` and whole numbers each followed by a unit s, m (minutes), h, D or W, \
         such as `every 6h`, `every 90m` or `every 1h30m`"
    )]
    BadInterval {
        /// The schedule as written.
        text: String,
        /// What is wrong, such as a unit that does not exist.
        problem: String,
    },
    /// `every 0s`: an interval that would run continuously.
    #[error("`{text}`: an interval must be at least 1s, such as `every 30s` or `every 6h`")]
    IntervalTooShort {
        /// The schedule as written.
        text: String,
    },
    /// A duration (such as `schedule_jitter`) that cannot be read.
    #[error(
        "`{text}` is not a duration: {problem}; write whole numbers each followed by a unit s, m (minutes), h, D or W, \
         such as `90s`, `10m`, `1h30m` or `2D`"
    )]
    BadDuration {
        /// The duration as written.
        text: String,
        /// What is wrong.
        problem: String,
    },
    /// A zone name neither the system's database nor jiff's bundled copy has.
    #[error("`{name}` is not a known time zone (IANA names such as Europe/Madrid or UTC)")]
    UnknownZone {
        /// The name as written.
        name: String,
    },
}

/// The likely mistake behind a field count, since "found 6" alone does not
/// say that seconds are not supported.
fn field_count_hint(found: usize) -> &'static str {
    match found {
        1 => "; or use a macro such as `@daily` or an interval such as `every 6h`",
        6 | 7 => "; seconds and years are not supported",
        _ => "",
    }
}
