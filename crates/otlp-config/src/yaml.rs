//! A small YAML tree with the position of every key and value, built on the
//! `saphyr-parser` event stream.
//!
//! The validator needs the file line and column of each setting, and autofix
//! edits the original text in place (so comments survive). Anchors and aliases
//! are refused: a config file has no use for them and they allow "billion
//! laughs" expansion. Nesting depth and file size are bounded.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// The largest config file accepted, in bytes.
pub(crate) const MAX_FILE_BYTES: usize = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted.
const MAX_DEPTH: usize = 32;

/// A 1-based line and column in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// The line, starting at 1.
    pub(crate) line: usize,
    /// The column, starting at 1.
    pub(crate) column: usize,
}

/// A YAML node with its position.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) pos: Pos,
    /// Byte range of the node's text (scalars only; quotes included when quoted).
    pub(crate) span: (usize, usize),
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Null,
    Scalar(String),
    Map(Vec<Entry>),
    Seq(Vec<Node>),
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) key_span: (usize, usize),
    pub(crate) value: Node,
}

/// Why a text is not a usable YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

enum Frame {
    Map {
        pos: Pos,
        entries: Vec<Entry>,
        key: Option<(String, Pos, (usize, usize))>,
    },
    Seq {
        pos: Pos,
        items: Vec<Node>,
    },
}

// === impl Node ===

impl Node {
    pub(crate) fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "an empty value",
            NodeKind::Scalar(_) => "a scalar",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Seq(_) => "a list",
        }
    }
}

/// Parses one YAML document into a [`Node`] tree. An empty text is `Null`.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "file is {} bytes, more than the {} byte limit for a config file",
                text.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    // saphyr reports positions as character indices; map them to bytes once.
    let char_to_byte: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte_of = |ci: usize| char_to_byte.get(ci).copied().unwrap_or(text.len());
    let pos_of = |span: &Span| Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    };

    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;

    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_owned(),
        })?;
        let pos = pos_of(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {
                continue;
            }
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "the file holds several YAML documents (---); keep one".into(),
                    });
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(SyntaxError {
                    pos,
                    message: "YAML aliases (*name) are not supported in config files; write the value out".into(),
                });
            }
            Event::Scalar(value, style, anchor, _) => {
                if anchor != 0 {
                    return Err(anchor_error(pos));
                }
                let span_b = (byte_of(span.start.index()), byte_of(span.end.index()));
                let is_null = style == ScalarStyle::Plain
                    && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                Node {
                    kind: if is_null {
                        NodeKind::Null
                    } else {
                        NodeKind::Scalar(value.into_owned())
                    },
                    pos,
                    span: span_b,
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if anchor != 0 {
                    return Err(anchor_error(pos));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        pos,
                        message: format!("nesting is deeper than {MAX_DEPTH} levels"),
                    });
                }
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        pos,
                        entries: Vec::new(),
                        key: None,
                    }
                } else {
                    Frame::Seq {
                        pos,
                        items: Vec::new(),
                    }
                };
                stack.push(frame);
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(Frame::Map { pos, entries, .. }) => Node {
                    kind: NodeKind::Map(entries),
                    pos,
                    span: (0, 0),
                },
                Some(Frame::Seq { pos, items }) => Node {
                    kind: NodeKind::Seq(items),
                    pos,
                    span: (0, 0),
                },
                None => continue,
            },
        };
        // Attach the finished node to its parent, or make it the root.
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let name = match node.kind {
                        NodeKind::Scalar(s) => s,
                        NodeKind::Null => String::new(),
                        NodeKind::Map(_) | NodeKind::Seq(_) => {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message:
                                    "a mapping key must be a plain name, not a mapping or list"
                                        .into(),
                            });
                        }
                    };
                    *key = Some((name, node.pos, node.span));
                }
                Some((k, key_pos, key_span)) => entries.push(Entry {
                    key: k,
                    key_pos,
                    key_span,
                    value: node,
                }),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        kind: NodeKind::Null,
        pos: Pos { line: 1, column: 1 },
        span: (0, 0),
    }))
}

fn anchor_error(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: "YAML anchors (&name) are not supported in config files; write the value out"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_carry_line_and_column() {
        let text = "# comment\nendpoint: http://x:4317\nretry:\n  max_retries: 3\n";
        let root = parse(text).unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[0].key, "endpoint");
        assert_eq!(entries[0].key_pos, Pos { line: 2, column: 1 });
        assert_eq!(
            entries[0].value.pos,
            Pos {
                line: 2,
                column: 11
            }
        );
        let (a, b) = entries[0].value.span;
        assert_eq!(&text[a..b], "http://x:4317");
        let NodeKind::Map(inner) = &entries[1].value.kind else {
            panic!("not a map")
        };
        assert_eq!(inner[0].key_pos, Pos { line: 4, column: 3 });
    }

    #[test]
    fn quoted_scalar_span_includes_quotes_and_utf8_is_mapped_to_bytes() {
        let text = "a: 'é'\nb: \"x y\"\n";
        let root = parse(text).unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!("not a map")
        };
        let (a, b) = entries[1].value.span;
        assert_eq!(&text[a..b], "\"x y\"");
        assert_eq!(entries[1].key_pos.line, 2);
    }

    #[test]
    fn syntax_error_reports_line_and_column() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn aliases_and_multiple_documents_are_refused() {
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert!(matches!(parse("").unwrap().kind, NodeKind::Null));
    }
}
