//! Validation of what an attendee or API caller sends with a booking: the attendee, the
//! answers to the event type's questions, and metadata. Every error names its field.

use serde_json::{Map, Value};
use slotd_store::{Attendee, Question, QuestionType};

use crate::error::{ApiError, FieldError};

/// Largest metadata object, serialised.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;
/// Longest name.
const NAME_MAX_CHARS: usize = 200;
/// Longest one-line and multi-line answers.
const TEXT_MAX_CHARS: usize = 1_000;
const LONG_TEXT_MAX_CHARS: usize = 10_000;
/// Longest reason.
pub const REASON_MAX_CHARS: usize = 1_000;

/// Whether `s` is an email address we can send to: `local@domain.tld`, no spaces, sane lengths.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
        })
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Checks the attendee; errors are pointed below `pointer` (e.g. `/attendee`).
pub fn attendee(pointer: &str, a: &Attendee, errors: &mut Vec<FieldError>) {
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        errors.push(FieldError::new(format!("{pointer}/name"), format!("must be 1–{NAME_MAX_CHARS} characters")));
    }
    if !is_email(&a.email) {
        errors.push(FieldError::new(format!("{pointer}/email"), format!("'{}' is not an email address", a.email)));
    }
    if let Err(e) = slotd_core::zone::time_zone(&a.time_zone) {
        errors.push(FieldError::new(format!("{pointer}/time_zone"), e.to_string()));
    }
}

/// Checks metadata's size.
pub fn metadata(m: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let size = Value::Object(m.clone()).to_string().len();
    if size > METADATA_MAX_BYTES {
        errors.push(FieldError::new("/metadata", format!("is {size} bytes; at most {METADATA_MAX_BYTES} are allowed")));
    }
}

/// Checks a reason's length.
pub fn reason(r: &Option<String>, errors: &mut Vec<FieldError>) {
    if r.as_ref().is_some_and(|r| r.chars().count() > REASON_MAX_CHARS) {
        errors.push(FieldError::new("/reason", format!("must be at most {REASON_MAX_CHARS} characters")));
    }
}

fn is_phone(s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    (4..=20).contains(&digits) && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit() || b" +-().".contains(&b))
}

/// Checks the answers against the questions; answers what is kept (unanswered optional
/// questions are left out).
pub fn answers(questions: &[Question], given: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut errors = Vec::new();
    for key in given.keys() {
        if !questions.iter().any(|q| &q.key == key) {
            errors.push(FieldError::new(format!("/answers/{key}"), "is not a question of this event type"));
        }
    }
    let mut kept = Map::new();
    for q in questions {
        let pointer = format!("/answers/{}", q.key);
        let value = given.get(&q.key).filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
        let Some(value) = value else {
            if q.required {
                errors.push(FieldError::new(pointer, format!("'{}' is required", q.label)));
            }
            continue;
        };
        let problem = match (q.kind, value) {
            (QuestionType::Text, Value::String(s)) if s.chars().count() <= TEXT_MAX_CHARS && !s.contains('\n') => None,
            (QuestionType::Text, _) => Some(format!("must be one line of at most {TEXT_MAX_CHARS} characters")),
            (QuestionType::LongText, Value::String(s)) if s.chars().count() <= LONG_TEXT_MAX_CHARS => None,
            (QuestionType::LongText, _) => Some(format!("must be text of at most {LONG_TEXT_MAX_CHARS} characters")),
            (QuestionType::Email, Value::String(s)) if is_email(s) => None,
            (QuestionType::Email, _) => Some("must be an email address".to_owned()),
            (QuestionType::Phone, Value::String(s)) if is_phone(s) => None,
            (QuestionType::Phone, _) => Some("must be a phone number (digits, spaces, + - ( ) .)".to_owned()),
            (QuestionType::Number, Value::Number(_)) => None,
            (QuestionType::Number, _) => Some("must be a number".to_owned()),
            (QuestionType::Select, Value::String(s)) if q.options.contains(s) => None,
            (QuestionType::Select, _) => Some(format!("must be one of: {}", q.options.join(", "))),
            (QuestionType::Checkbox, Value::Bool(_)) => None,
            (QuestionType::Checkbox, _) => Some("must be true or false".to_owned()),
        };
        match problem {
            Some(detail) => errors.push(FieldError::new(pointer, detail)),
            None => {
                kept.insert(q.key.clone(), value.clone());
            }
        }
    }
    ApiError::check(errors)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_told_apart_from_near_misses() {
        for ok in ["grace@example.com", "a.b+c@sub.example.co.uk", "x@xn--bcher-kva.example"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in
            ["", "grace", "grace@", "@example.com", "grace@example", "gr ace@example.com", "a@b..com", "a@b@c.com"]
        {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn answers_are_checked_by_type_and_required_flag() {
        let questions: Vec<Question> = serde_json::from_value(serde_json::json!([
            { "key": "company", "label": "Company", "type": "text", "required": true },
            { "key": "size", "label": "Size", "type": "select", "required": false, "options": ["S", "M"] },
            { "key": "agree", "label": "Agree", "type": "checkbox", "required": false }
        ]))
        .unwrap();
        let given = |v: Value| v.as_object().unwrap().clone();
        assert!(answers(&questions, given(serde_json::json!({ "company": "Navy", "size": "S" }))).is_ok());
        let Err(ApiError::Validation(errors)) =
            answers(&questions, given(serde_json::json!({ "size": "XL", "agree": "yes", "extra": 1 })))
        else {
            panic!("expected validation errors")
        };
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/answers/extra", "/answers/company", "/answers/size", "/answers/agree"]);
    }
}
