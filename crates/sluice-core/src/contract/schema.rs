//! Generating the payload schema: the definition's fields as a tree of places ([`Node`]), and
//! the schema of each place with every field's rules ([`Generator`]), recording where each rule
//! sits so that validation errors can be traced back to a field and a code.

use super::*;

/// The payload as a tree of places: fields sit at nodes, containers have children.
#[derive(Default)]
pub(super) struct Node {
    pub(super) fields: Vec<usize>,
    children: Vec<(String, Node)>,
}

impl Node {
    pub(super) fn child(&mut self, token: &str) -> &mut Node {
        let at = match self.children.iter().position(|(t, _)| t == token) {
            Some(at) => at,
            None => {
                self.children.push((token.to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[at].1
    }

    /// Required fields at or beneath this node.
    fn mandatory(&self, mandatory: &[bool], out: &mut Vec<usize>) {
        out.extend(self.fields.iter().copied().filter(|&f| mandatory[f]));
        for (_, c) in &self.children {
            c.mandatory(mandatory, out);
        }
    }
}

pub(super) struct Generator<'a> {
    pub(super) definition: &'a Definition,
    pub(super) patterns: &'a BTreeMap<String, regex::Regex>,
    pub(super) mandatory: Vec<bool>,
    pub(super) slots: BTreeMap<String, Slot>,
    pub(super) containers: BTreeMap<String, Vec<usize>>,
}

impl Generator<'_> {
    /// The schema of one place, recording where each rule sits. `at` is its schema location.
    pub(super) fn node(&mut self, node: &Node, at: &str) -> Value {
        let mut out = Map::new();
        let fields = &self.definition.fields;
        if let [only] = node.fields.as_slice() {
            let f = &fields[*only];
            out.insert("title".into(), json!(f.label.as_deref().unwrap_or(&f.name)));
            out.insert("description".into(), json!(self.describe(f)));
            if let Some(d) = &f.default {
                out.insert("default".into(), json!(d));
            }
        } else if !node.fields.is_empty() {
            let names: Vec<&str> = node.fields.iter().map(|&i| fields[i].name.as_str()).collect();
            out.insert("description".into(), json!(format!("Read by the fields {}.", names.join(", "))));
        }
        if !node.children.is_empty() {
            let mut beneath = Vec::new();
            for (_, c) in &node.children {
                c.mandatory(&self.mandatory, &mut beneath);
            }
            let needed: Vec<&(String, Node)> = node
                .children
                .iter()
                .filter(|(_, c)| {
                    let mut m = Vec::new();
                    c.mandatory(&self.mandatory, &mut m);
                    !m.is_empty()
                })
                .collect();
            if !needed.is_empty() {
                if needed.iter().all(|(t, _)| array_index(t).is_some()) {
                    out.insert("type".into(), json!(["object", "array"]));
                } else {
                    out.insert("type".into(), json!("object"));
                }
            }
            let mut properties = Map::new();
            for (t, c) in &node.children {
                properties.insert(t.clone(), self.node(c, &format!("{at}/properties/{}", escape_token(t))));
            }
            out.insert("properties".into(), Value::Object(properties));
            if !needed.is_empty() {
                out.insert("required".into(), json!(needed.iter().map(|(t, _)| t).collect::<Vec<_>>()));
            }
            let indexed: Vec<(usize, &Node)> =
                node.children.iter().filter_map(|(t, c)| Some((array_index(t)?, c))).collect();
            if let Some(last) = indexed.iter().map(|(i, _)| *i).max() {
                let mut items = vec![json!(true); last + 1];
                for (i, c) in &indexed {
                    items[*i] = self.node(c, &format!("{at}/prefixItems/{i}"));
                }
                out.insert("prefixItems".into(), Value::Array(items));
                let least = needed.iter().filter_map(|(t, _)| array_index(t)).max();
                if let Some(least) = least {
                    out.insert("minItems".into(), json!(least + 1));
                }
            }
            if !beneath.is_empty() {
                self.containers.insert(at.to_owned(), beneath);
            }
        }
        let mut rules = Vec::new();
        for &i in &node.fields {
            for (rank, code, map, rule) in self.rules(i) {
                self.slots.insert(format!("{at}/allOf/{}", rules.len()), Slot { field: i, rank, code, map });
                rules.push(rule);
            }
        }
        if !rules.is_empty() {
            out.insert("allOf".into(), Value::Array(rules));
        }
        Value::Object(out)
    }

    fn describe(&self, f: &FieldSpec) -> String {
        let mut d = format!("Staging column {}", f.name);
        for m in self.definition.transform.field_map.iter().filter(|m| m.source == f.name) {
            let _ = write!(d, ", mapped to {}.{}", self.definition.target_table, m.target);
            if let Some(r) = &m.reference {
                let _ = write!(d, " (a record found by {})", r.match_fields.join(" or "));
            }
        }
        d.push_str(". ");
        d.push_str(match f.kind {
            FieldType::String => "Text",
            FieldType::Reference => "A name or sys_id",
            FieldType::Choice => "One of the listed values",
            FieldType::Integer => "An integer (a JSON number or its text)",
            FieldType::Boolean => "true or false (also 1/0, any case)",
            FieldType::DateTime => "A date-time yyyy-MM-dd HH:mm:ss in UTC (ISO 8601 T and Z accepted)",
        });
        if self.definition.stages_json_text(f) {
            d.push_str("; JSON numbers, booleans, objects and arrays are taken as their JSON text");
        } else if matches!(f.kind, FieldType::String | FieldType::Reference) {
            d.push_str("; JSON numbers and booleans are taken as their text");
        }
        if let Some(m) = f.max_length {
            let _ = write!(d, "; at most {m} characters");
        }
        if let Some(p) = &f.pattern {
            let _ = write!(d, "; must match {p}");
        }
        match (&f.default, is_mandatory(f)) {
            (Some(v), _) => {
                let _ = write!(d, "; default {v:?}");
            }
            (None, true) => d.push_str("; required"),
            (None, false) => d.push_str("; optional"),
        }
        d.push('.');
        d
    }

    /// The rules of field `i`: (rank, code, value map entry, schema), in `validate`'s order.
    fn rules(&self, i: usize) -> Vec<(u8, ErrorCode, Option<usize>, Value)> {
        let f = &self.definition.fields[i];
        let mut rules = Vec::new();
        if !self.definition.stages_json_text(f) {
            rules.push((
                SHAPE,
                ErrorCode::WrongType,
                None,
                json!({"description": "A single value, not an object or array", "type": ["string", "number", "boolean", "null"]}),
            ));
        }
        if self.mandatory[i] {
            rules.push((
                REQUIRED,
                ErrorCode::FieldRequired,
                None,
                json!({"description": "Required: not null, not blank",
                       "not": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": format!("^{WS}*$")}]}}),
            ));
        }
        if let Some(max) = f.max_length {
            rules.push((LENGTH, ErrorCode::FieldTooLong, None, length_rule(max)));
        }
        if let (Some(p), Some(compiled)) = (&f.pattern, self.patterns.get(&f.name)) {
            let mut rule = json!({
                "description": format!("Matches {p} (white space around the value ignored)"),
                "pattern": format!("^{WS}*(?:{})?{WS}*$", strip_anchors(p)),
            });
            let refused: Vec<bool> = [true, false].into_iter().filter(|b| !compiled.is_match(&b.to_string())).collect();
            if !refused.is_empty() {
                rule["not"] = json!({"enum": refused});
            }
            rules.push((PATTERN, ErrorCode::PatternMismatch, None, rule));
        }
        if let Some(rule) = value_rule(f) {
            let code = if f.kind == FieldType::Choice { ErrorCode::InvalidChoice } else { ErrorCode::WrongType };
            rules.push((VALUE, code, None, rule));
        }
        for (k, m) in self.definition.transform.field_map.iter().enumerate() {
            if m.source == f.name && !m.value_map.is_empty() {
                let keys: Vec<&str> = m.value_map.keys().map(String::as_str).collect();
                rules.push((MAPPED, ErrorCode::InvalidChoice, Some(k), mapped_rule(f.kind, &keys)));
            }
        }
        rules
    }
}

/// `max` characters once trimmed; numbers by the length of their text, booleans likewise.
fn length_rule(max: usize) -> Value {
    let padded = if max <= EXACT_PADDED_LENGTH {
        json!([{"maxLength": max}, {"pattern": format!(r"^{WS}*[\s\S]{{0,{max}}}{WS}*$")}])
    } else {
        json!([{"maxLength": max}, {"pattern": format!("^{WS}")}, {"pattern": format!("{WS}$")}])
    };
    let mut rule = json!({
        "description": format!("At most {max} characters, white space around the value not counted"),
        "anyOf": padded,
    });
    // An integer's text: its digits, plus the sign when negative.
    if let Some((keyword, bound)) = digits_bound(max, false) {
        rule[keyword] = bound;
    }
    if let Some((keyword, bound)) = digits_bound(max - 1, true) {
        rule[keyword] = bound;
    }
    let too_long: Vec<bool> = [true, false].into_iter().filter(|b| b.to_string().len() > max).collect();
    if !too_long.is_empty() {
        rule["not"] = json!({"enum": too_long});
    }
    rule
}

/// The bound that keeps numbers to integers of at most `digits` digits (the farthest such
/// integer from zero, above zero or below it): a keyword and a JSON number that compares exactly
/// with any JSON number. `None` when every number qualifies.
pub(super) fn digits_bound(digits: usize, negative: bool) -> Option<(&'static str, Value)> {
    let (inclusive, exclusive) =
        if negative { ("minimum", "exclusiveMinimum") } else { ("maximum", "exclusiveMaximum") };
    if digits == 0 {
        // No digits at all: only zero (`-0` is staged as `0`).
        return Some((inclusive, json!(0)));
    }
    if digits <= 18 {
        let far = 10i64.pow(digits as u32) - 1;
        return Some((inclusive, json!(if negative { -far } else { far })));
    }
    if digits == 19 && !negative {
        return Some((inclusive, json!(10u64.pow(19) - 1)));
    }
    // Every finite double has at most 309 integer digits.
    if digits >= 309 {
        return None;
    }
    // The double nearest to 10^digits. Below 10^digits it still has `digits` digits and no double
    // lies between it and 10^digits: an inclusive bound. Otherwise no double lies between
    // 10^digits and it: an exclusive bound.
    let b: f64 = format!("1e{digits}").parse().ok()?;
    let keyword = if format!("{b:.0}").len() <= digits { inclusive } else { exclusive };
    Some((keyword, Value::Number(Number::from_f64(if negative { -b } else { b })?)))
}

/// A pattern as the padded branch uses it: a leading `^` and a trailing `$` are implied by the
/// surrounding anchors and would stop white space around the value from matching.
fn strip_anchors(p: &str) -> &str {
    let p = p.strip_prefix('^').unwrap_or(p);
    match p.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') => rest,
        _ => p,
    }
}

/// `text` as a pattern that matches it literally (ECMA-262 and Rust read it alike).
fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if r"\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_control() && (c as u32) < 0x10000 {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as a pattern that ignores ASCII case, as `eq_ignore_ascii_case` does.
fn literal_ignoring_case(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            let _ = write!(out, "[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase());
        } else {
            out.push_str(&literal(&c.to_string()));
        }
    }
    out
}

/// Strings whose trimmed text is one of `alternatives` (each already a pattern), or blank.
fn trimmed_one_of(alternatives: &[String]) -> Value {
    json!({"type": "string", "pattern": format!("^{WS}*(?:{})?{WS}*$", alternatives.join("|"))})
}

/// A decimal integer string not above `bound` (digits, no sign).
fn not_above(bound: &str) -> String {
    let n = bound.len();
    let mut alternatives = Vec::new();
    if n > 1 {
        alternatives.push(format!("[0-9]{{1,{}}}", n - 1));
    }
    for (i, d) in bound.bytes().enumerate() {
        if d > b'0' {
            let rest = n - i - 1;
            let tail = if rest > 0 { format!("[0-9]{{{rest}}}") } else { String::new() };
            alternatives.push(format!("{}[0-{}]{tail}", &bound[..i], (d - 1) as char));
        }
    }
    alternatives.push(bound.to_owned());
    alternatives.join("|")
}

/// The text `str::parse::<i64>` accepts.
fn i64_text() -> String {
    format!(r"\+?0*(?:{})|-0*(?:{})", not_above("9223372036854775807"), not_above("9223372036854775808"))
}

/// Texts that parse to the integer `k`.
fn integer_text(k: i64) -> String {
    let digits = k.unsigned_abs().to_string();
    match k.signum() {
        0 => "[+-]?0+".into(),
        1 => format!(r"\+?0*{digits}"),
        _ => format!("-0*{digits}"),
    }
}

fn date_time_text() -> String {
    let long = "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])";
    let short = "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)";
    let february = "02-(?:0[1-9]|1[0-9]|2[0-8])";
    let leap = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29";
    let time = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]";
    format!("(?:[0-9]{{4}}-(?:{long}|{short}|{february})|{leap})[ T]{time}Z?")
}

fn boolean_text(value: bool) -> String {
    if value { format!("{}|1", literal_ignoring_case("true")) } else { format!("{}|0", literal_ignoring_case("false")) }
}

/// The JSON numbers whose staged text equals `text` (compared ignoring ASCII case or not).
fn numbers_staged_as(text: &str, ignore_case: bool) -> Option<Number> {
    let same = |n: &Number| {
        let t = number_text(n);
        if ignore_case { t.eq_ignore_ascii_case(text) } else { t == text }
    };
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i)).filter(same);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Number::from(u)).filter(same);
    }
    let f: f64 = text.to_ascii_lowercase().parse().ok()?;
    Number::from_f64(f).filter(same)
}

/// The field's type: what its value must be once it is there.
fn value_rule(f: &FieldSpec) -> Option<Value> {
    let nothing = json!({"type": "null"});
    let rule = match f.kind {
        FieldType::String | FieldType::Reference => return None,
        FieldType::Choice => {
            // A choice with white space around it can never match a trimmed value.
            let usable: Vec<&String> = f.choices.iter().filter(|c| !c.is_empty() && c.trim() == c.as_str()).collect();
            let mut values: Vec<Value> = usable.iter().map(|c| json!(c)).collect();
            values.extend(usable.iter().filter_map(|c| numbers_staged_as(c, false)).map(Value::Number));
            values.extend(usable.iter().filter_map(|c| c.parse::<bool>().ok()).map(Value::Bool));
            let strings: Vec<String> = usable.iter().map(|c| literal(c)).collect();
            let mut any_of = vec![nothing, trimmed_one_of(&strings)];
            if !values.is_empty() {
                any_of.insert(0, json!({"enum": values}));
            }
            json!({"description": "One of the choices", "anyOf": any_of})
        }
        FieldType::Integer => json!({"description": "An integer", "anyOf": [
            {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}, nothing, trimmed_one_of(&[i64_text()])]}),
        FieldType::Boolean => json!({"description": "true or false", "anyOf": [
            {"enum": [true, false, 1, 0]}, nothing, trimmed_one_of(&[boolean_text(true), boolean_text(false)])]}),
        FieldType::DateTime => {
            json!({"description": "A date-time", "anyOf": [nothing, trimmed_one_of(&[date_time_text()])]})
        }
    };
    Some(rule)
}

/// A value map's keys, matched case-insensitively against the value in its typed form.
fn mapped_rule(kind: FieldType, keys: &[&str]) -> Value {
    let mut values: Vec<Value> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    for key in keys {
        match kind {
            FieldType::String | FieldType::Reference | FieldType::Choice => {
                if !key.is_empty() && key.trim() == *key {
                    strings.push(literal_ignoring_case(key));
                    values.extend(numbers_staged_as(key, true).map(Value::Number));
                    if key.eq_ignore_ascii_case("true") || key.eq_ignore_ascii_case("false") {
                        values.push(json!(key.eq_ignore_ascii_case("true")));
                    }
                }
            }
            FieldType::Integer => {
                if let Ok(k) = key.parse::<i64>()
                    && k.to_string() == *key
                {
                    strings.push(integer_text(k));
                    values.push(json!(k));
                }
            }
            FieldType::Boolean => {
                for b in [true, false] {
                    if key.eq_ignore_ascii_case(&b.to_string()) {
                        strings.push(boolean_text(b));
                        values.extend([json!(b), json!(u8::from(b))]);
                    }
                }
            }
            FieldType::DateTime => {
                if DateTime::parse(key).is_ok_and(|d| d.to_string() == *key) {
                    strings.push(format!("{}[ T]{}Z?", literal(&key[..10]), literal(&key[11..])));
                }
            }
        }
    }
    let mut any_of = vec![json!({"type": "null"}), trimmed_one_of(&strings)];
    if !values.is_empty() {
        any_of.insert(0, json!({"enum": values}));
    }
    json!({"description": format!("A key of the value map: {} (any case)", keys.join(", ")), "anyOf": any_of})
}
