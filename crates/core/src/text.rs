//! Text that came from input (file contents, names, labels, HTTP headers), made safe to print
//! on a terminal: control characters (C0, DEL, C1, which include ESC and so every ANSI
//! sequence) are written as escapes, so input can neither move the cursor, recolour the
//! screen nor hide what follows.

use std::borrow::Cow;

/// `s` with every control character written as a Rust-style escape (`\u{1b}`, `\n`, `\t`);
/// borrowed unchanged when there is none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Multi-line text (a report, a summary, a table) with every control character but the line
/// feed and the tab escaped as in [`printable`]: the layout stays, and no input it quotes
/// can move the cursor, recolour or clear the screen. Borrowed unchanged when clean.
pub fn printable_text(s: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !s.chars().any(|c| c.is_control() && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{printable, printable_text};
    use proptest::prelude::*;

    #[test]
    fn ansi_sequences_and_newlines_are_escaped() {
        assert_eq!(
            printable("job\u{1b}[2J\u{1b}[31mred"),
            "job\\u{1b}[2J\\u{1b}[31mred"
        );
        assert_eq!(
            printable("a\nb\r\tc\u{7f}\u{9b}"),
            "a\\nb\\r\\tc\\u{7f}\\u{9b}"
        );
        assert!(matches!(
            printable("llama-3 8B é"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn text_keeps_its_lines_and_tabs_only() {
        assert_eq!(
            printable_text("a\tb\n\u{1b}[2Jc\r\n"),
            "a\tb\n\\u{1b}[2Jc\\r\n"
        );
    }

    proptest! {
        #[test]
        fn no_control_character_survives(s in any::<String>()) {
            let p = printable(&s);
            prop_assert!(!p.chars().any(char::is_control), "{:?}", p);
            let t = printable_text(&s);
            prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{:?}", t);
            prop_assert_eq!(t.matches('\n').count(), s.matches('\n').count());
        }
    }
}
