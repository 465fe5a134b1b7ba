//! Maps field paths (`spec.volumes[0].name`) to their line and column in the YAML source,
//! so errors found after deserialization can still point at the text.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Where each field path of the first YAML document starts (1-based line and column).
#[derive(Debug, Default)]
pub struct Locations {
    spots: HashMap<String, (usize, usize)>,
}

impl Locations {
    /// Indexes `text`; a document that does not parse yields an empty index.
    pub fn index(text: &str) -> Locations {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        // Errors are reported by the deserializer with their own position.
        let _ = parser.load(&mut builder, false);
        Locations {
            spots: builder.spots,
        }
    }

    /// The position of `path`, or of its nearest ancestor present in the file, or 1:1.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(spot) = self.spots.get(p) {
                return *spot;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    spots: HashMap<String, (usize, usize)>,
    done: bool,
}

impl Builder {
    /// The path of the node that starts now, advancing the parent's state.
    fn child_path(&mut self) -> Option<String> {
        match self.stack.last_mut()? {
            Frame::Map { path, key } => key.take().map(|k| join(path, &k)),
            Frame::Seq { path, next } => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }

    /// True when the next scalar of the innermost mapping is a key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// Records where `path` starts (yaml-rust2 columns are 0-based; ours are 1-based).
    fn record(&mut self, path: &str, mark: Marker) {
        self.spots
            .entry(path.to_string())
            .or_insert((mark.line(), mark.col() + 1));
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(value, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let full = join(path, &value);
                        *key = Some(value);
                        self.record(&full, mark);
                    }
                } else if let Some(p) = self.child_path() {
                    self.record(&p, mark);
                }
            }
            Event::Alias(_) => {
                self.child_path();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() {
                    String::new()
                } else {
                    self.child_path().unwrap_or_default()
                };
                self.record(&path, mark);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_items_and_nearest_ancestor() {
        let text = "a:\n  b: 1\n  list:\n    - x: 2\n    - y: 3\nc: [4, 5]\n";
        let loc = Locations::index(text);
        assert_eq!(loc.find("a.b"), (2, 3));
        assert_eq!(loc.find("a.list[1].y"), (5, 7));
        assert_eq!(loc.find("a.list[1].missing").0, 5);
        assert_eq!(loc.find("c[1]"), (6, 8));
        assert_eq!(loc.find("nothing"), (1, 1));
    }
}
