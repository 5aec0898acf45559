//! syslog-ng style templates: `${NAME}`, `$NAME` and dotted paths, parsed once and rendered
//! per record. `$$` is a literal dollar.

use super::fields::{field_text, found_text, FieldSet};
use anyhow::{bail, Result};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// Each field's path, for messages.
    names: Vec<String>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(usize),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

impl Template {
    /// Parses `text`, registering its fields in `fields`.
    pub fn parse(text: &str, fields: &mut FieldSet) -> Result<Template> {
        let b = text.as_bytes();
        let mut parts = Vec::new();
        let mut names = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                let next = text[i..].find('$').map_or(b.len(), |n| i + n);
                lit.push_str(&text[i..next]);
                i = next;
                continue;
            }
            let (name, used) = match b.get(i + 1) {
                Some(b'$') => {
                    lit.push('$');
                    i += 2;
                    continue;
                }
                Some(b'{') => match text[i + 2..].find('}') {
                    Some(end) => (&text[i + 2..i + 2 + end], end + 3),
                    None => bail!("template `{text}`: `${{` without a closing `}}`"),
                },
                Some(&c) if is_name_byte(c) => {
                    let n = b[i + 1..].iter().take_while(|&&c| is_name_byte(c)).count();
                    (&text[i + 1..i + 1 + n], n + 1)
                }
                _ => {
                    lit.push('$');
                    i += 1;
                    continue;
                }
            };
            if name.is_empty() || name.split('.').any(str::is_empty) {
                bail!(
                    "template `{text}`: `{name}` is not a field name; write ${{NAME}} or ${{a.b}}"
                );
            }
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            parts.push(Part::Field(fields.add(name)));
            names.push(name.to_string());
            i += used;
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Template { parts, names })
    }

    /// The text when the template names no field.
    pub fn as_static(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether the template names any field.
    pub fn has_fields(&self) -> bool {
        !self.names.is_empty()
    }

    /// Renders into `out`; a missing field renders empty and its name is returned.
    pub fn render<'t>(
        &'t self,
        json: &str,
        found: &[Option<(usize, usize)>],
        out: &mut String,
    ) -> Option<&'t str> {
        out.clear();
        let mut missing = None;
        let mut scratch = String::new();
        let mut field_no = 0;
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(id) => {
                    match found_text(json, found, *id) {
                        Some(raw) => out.push_str(field_text(raw, &mut scratch)),
                        None => {
                            missing.get_or_insert(self.names[field_no].as_str());
                        }
                    }
                    field_no += 1;
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, json: &str) -> (String, Option<String>) {
        let mut set = FieldSet::default();
        let t = Template::parse(t, &mut set).unwrap();
        let mut found = Vec::new();
        let text = set.extract(json.as_bytes(), &mut found).unwrap();
        let mut out = String::new();
        let missing = t.render(text, &found, &mut out).map(str::to_string);
        (out, missing)
    }

    #[test]
    fn renders_fields_and_literals() {
        assert_eq!(
            render("logs.${PROGRAM}", r#"{"PROGRAM":"sshd"}"#).0,
            "logs.sshd"
        );
        assert_eq!(render("$HOST-$PID", r#"{"HOST":"h","PID":7}"#).0, "h-7");
        assert_eq!(render("${user.id}", r#"{"user":{"id":"u1"}}"#).0, "u1");
        assert_eq!(render("a$$b$", "{}").0, "a$b$");
        assert_eq!(
            render("x.${NOPE}", "{}"),
            ("x.".to_string(), Some("NOPE".to_string()))
        );
    }

    #[test]
    fn static_and_bad_templates() {
        let mut set = FieldSet::default();
        assert_eq!(
            Template::parse("plain", &mut set).unwrap().as_static(),
            Some("plain")
        );
        assert!(Template::parse("${oops", &mut set).is_err());
        assert!(Template::parse("${a..b}", &mut set).is_err());
        assert!(set.is_empty());
    }
}
