//! Where in the configuration file something is: toml's byte spans as `FILE:LINE:COLUMN`,
//! on every error about the file.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

/// The file's name and text, to say where in it something is.
pub(super) struct Source<'a> {
    /// As given.
    pub(super) path: &'a Path,
    /// What it holds.
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// `FILE:LINE:COLUMN: what` for the byte span `span` of the text.
    pub(super) fn error(&self, span: Range<usize>, what: impl std::fmt::Display) -> anyhow::Error {
        let (line, column) = line_column(self.text, span.start);
        anyhow::anyhow!("{}:{line}:{column}: {what}", self.path.display())
    }

    /// A TOML syntax or type error, where it is.
    pub(super) fn toml_error(&self, error: &toml::de::Error) -> anyhow::Error {
        // TOML's own word for what serde calls a field.
        let what = error
            .message()
            .trim_end()
            .replacen("unknown field", "unknown key", 1)
            .replacen("missing field", "missing key", 1);
        match error.span() {
            Some(span) => self.error(span, what),
            None => anyhow::anyhow!("{}: {what}", self.path.display()),
        }
    }

    /// The text value of `key`, if given, as `parse` reads it.
    pub(super) fn parse<T, E: std::fmt::Display>(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> anyhow::Result<Option<T>> {
        value
            .map(|v| {
                parse(v.get_ref()).map_err(|why| self.error(v.span(), format!("{key}: {why:#}")))
            })
            .transpose()
    }

    /// The size limit `key`, if given, checked as its option is.
    pub(super) fn size(
        &self,
        value: Option<&Spanned<usize>>,
        key: &str,
    ) -> anyhow::Result<Option<usize>> {
        value
            .map(|v| {
                super::super::at_least(&key.replace('_', "-"), *v.get_ref())
                    .map(|()| *v.get_ref())
                    .map_err(|why| self.error(v.span(), format!("{key} {why}")))
            })
            .transpose()
    }
}

/// The line and column (both from 1, the column in characters) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_become_lines_and_columns_counted_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // After the two bytes of `é`: the third character.
        assert_eq!(line_column(text, 9), (2, 3));
        // Inside `é`: the character it is in.
        assert_eq!(line_column(text, 8), (2, 2));
        assert_eq!(line_column(text, text.len()), (3, 1));
    }
}
