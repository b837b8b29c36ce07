//! Table schemas: which fields a table has, their kinds, choices and labels. The store builds its
//! tables and its SQL column lists from these, and the server encodes values on the wire with them.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Integer,
    Boolean,
    DateTime,
    /// A sys_id of a record in the named table.
    Reference(String),
    /// Write-only, append-only text kept in `sys_journal_field` (`work_notes`, `comments`).
    Journal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub max_length: Option<usize>,
    pub choices: Vec<Choice>,
    /// Only its choices may be written through the Table API (the business rules compute from
    /// it); other choice fields store what they are given, as ServiceNow's REST API does.
    pub strict_choices: bool,
    /// Never sent to clients nor usable in queries (password hashes, raw payload bytes).
    pub hidden: bool,
}

impl Field {
    pub fn new(name: &str, label: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            kind,
            max_length: None,
            choices: Vec::new(),
            strict_choices: false,
            hidden: false,
        }
    }

    pub fn max(mut self, n: usize) -> Self {
        self.max_length = Some(n);
        self
    }

    pub fn choices(mut self, pairs: &[(&str, &str)]) -> Self {
        self.choices = pairs
            .iter()
            .map(|(value, label)| Choice { value: (*value).to_owned(), label: (*label).to_owned() })
            .collect();
        self
    }

    /// Choices and nothing else (see [`Field::strict_choices`]).
    pub fn strict(mut self) -> Self {
        self.strict_choices = true;
        self
    }

    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    pub fn reference_table(&self) -> Option<&str> {
        match &self.kind {
            FieldKind::Reference(t) => Some(t),
            _ => None,
        }
    }

    pub fn choice_label(&self, value: &str) -> Option<&str> {
        self.choices.iter().find(|c| c.value == value).map(|c| c.label.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct TableSchema {
    pub name: String,
    pub label: String,
    /// The field shown when another record refers to this one (`number`, `name`, `user_name`).
    pub display_field: String,
    pub fields: Vec<Field>,
}

impl TableSchema {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A field a client may see and filter on.
    pub fn visible_field(&self, name: &str) -> Option<&Field> {
        self.field(name).filter(|f| !f.hidden)
    }

    pub fn visible_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.hidden)
    }

    /// Fields that have a column in the table (journal fields live in `sys_journal_field`).
    pub fn stored_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.kind != FieldKind::Journal)
    }
}

/// Identifiers that become table or column names: lowercase ASCII letters, digits and
/// underscores, starting with a letter, at most 80 characters. Only names that pass this check
/// ever reach SQL text; values always travel as bound parameters.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 80
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers() {
        assert!(super::is_identifier("u_incident_import"));
        assert!(!super::is_identifier("U_x"));
        assert!(!super::is_identifier("_x"));
        assert!(!super::is_identifier("x; drop table incident"));
        assert!(!super::is_identifier(""));
    }
}
