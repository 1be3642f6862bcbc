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

#[cfg(test)]
mod tests {
    use super::printable;
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

    proptest! {
        #[test]
        fn no_control_character_survives(s in any::<String>()) {
            let p = printable(&s);
            prop_assert!(!p.chars().any(char::is_control), "{:?}", p);
        }
    }
}
