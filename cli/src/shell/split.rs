//! Cutting SQL text into statements at the semicolons that are outside
//! strings, quoted names and comments, so each statement is parsed, run and
//! reported on its own (one syntax error does not hide the others), and the
//! shell knows when what was typed so far ends a statement.

/// One statement of a script: its text (without the `;`) and the line it
/// starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// Inside '...', "..." or `...`; the quote character.
    Quoted(char),
    LineComment,
    /// Inside /* */, nested this deep.
    BlockComment(usize),
    /// Inside $tag$...$tag$; the index where the tag starts.
    Dollar(usize, usize),
}

/// Where the text's statements end: each `;` outside quotes and comments,
/// and the state at the end of the text.
fn scan(text: &str) -> (Vec<usize>, State) {
    let bytes = text.as_bytes();
    let mut ends = Vec::new();
    let mut state = State::Code;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match c {
                b'\'' | b'"' | b'`' => state = State::Quoted(c as char),
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment(1);
                    i += 1;
                }
                b'$' => {
                    // $$ or $tag$ opens a dollar-quoted string.
                    let tag_len = bytes[i + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                        .count();
                    if bytes.get(i + 1 + tag_len) == Some(&b'$')
                        && !bytes[i + 1..i + 1 + tag_len]
                            .first()
                            .is_some_and(u8::is_ascii_digit)
                    {
                        state = State::Dollar(i, tag_len + 2);
                        i += tag_len + 1;
                    }
                }
                b';' => ends.push(i),
                _ => {}
            },
            State::Quoted(q) => {
                if c == q as u8 {
                    if next == Some(c) {
                        // A doubled quote stands for itself.
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment(depth) => {
                if c == b'*' && next == Some(b'/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment(depth - 1)
                    };
                    i += 1;
                } else if c == b'/' && next == Some(b'*') {
                    state = State::BlockComment(depth + 1);
                    i += 1;
                }
            }
            State::Dollar(start, len) => {
                let tag = &bytes[start..start + len];
                if bytes[i..].starts_with(tag) {
                    state = State::Code;
                    i += len - 1;
                }
            }
        }
        i += 1;
    }
    (ends, state)
}

/// True when the text has something besides comments and white space.
fn has_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        match bytes[i] {
            b'-' if next == Some(b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 1usize;
                i += 2;
                while i < bytes.len() && depth > 0 {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => return true,
        }
        i += 1;
    }
    false
}

/// The statements of `text`, in order; pieces with only comments or white
/// space are left out, and text after the last `;` is a statement too.
pub fn split(text: &str) -> Vec<Piece> {
    let (ends, _) = scan(text);
    let mut pieces = Vec::new();
    let mut start = 0;
    for end in ends.into_iter().chain(std::iter::once(text.len())) {
        let piece = &text[start..end];
        if has_code(piece) {
            // The line of the first character that is not blank.
            let lead = piece.len() - piece.trim_start().len();
            let line = text[..start + lead].matches('\n').count() + 1;
            pieces.push(Piece {
                text: piece.trim().to_string(),
                line,
            });
        }
        start = (end + 1).min(text.len());
    }
    pieces
}

/// True when what was typed so far ends a statement: the last thing that is
/// not a comment or white space is a `;` outside quotes and comments.
pub fn is_complete(text: &str) -> bool {
    let (ends, state) = scan(text);
    if matches!(
        state,
        State::Quoted(_) | State::BlockComment(_) | State::Dollar(..)
    ) {
        return false;
    }
    match ends.last() {
        Some(&last) => !has_code(&text[last + 1..]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(String, usize)> {
        split(text).into_iter().map(|p| (p.text, p.line)).collect()
    }

    #[test]
    fn semicolons_in_strings_names_and_comments_do_not_end_statements() {
        let sql = "SELECT ';' AS \"a;b\"; -- one; two\nSELECT 2 /* x; /* y; */ z; */ ;\n\nSELECT $$;$$, $t$;$t$";
        assert_eq!(
            texts(sql),
            vec![
                ("SELECT ';' AS \"a;b\"".to_string(), 1),
                ("-- one; two\nSELECT 2 /* x; /* y; */ z; */".to_string(), 1),
                ("SELECT $$;$$, $t$;$t$".to_string(), 4),
            ]
        );
    }

    #[test]
    fn comment_only_pieces_are_dropped_and_lines_counted() {
        assert_eq!(
            texts("-- header\n;\n\n  SELECT 1;\n-- trailing"),
            vec![("SELECT 1".to_string(), 4)]
        );
        assert_eq!(
            texts("SELECT 'it''s;'"),
            vec![("SELECT 'it''s;'".to_string(), 1)]
        );
    }

    #[test]
    fn complete_when_the_last_code_is_a_semicolon() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- a comment"));
        assert!(is_complete("SELECT 1; /* done */  "));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 -- ;"));
        assert!(!is_complete("SELECT 1; SELECT 2"));
        assert!(!is_complete("SELECT /* ; */"));
        assert!(!is_complete("SELECT 1; /* open"));
    }
}
