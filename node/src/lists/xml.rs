//! A streaming walk over an XML list that hands over one record element at a
//! time as a small tree, so a list of any length is read without holding more
//! than one record's tree.
//!
//! Text is entity-decoded and trimmed; attributes are not kept (the UN list
//! carries none that matter). After a syntax error the rest of the document
//! cannot be trusted: the walk reports it once and stops.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One element: its local name, its text and its child elements.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child `name`, if not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

/// What the walk found: the document's root name, then each record.
pub enum Item {
    Root(String),
    /// A record (1-based number among the records) and its tree.
    Record(u64, Node),
    /// The walk stopped at record `number`: a syntax error or a cut-off document.
    Broken(u64, &'static str),
}

/// Walks `xml`, calling `each` for the root and for every element named in
/// `records` (wherever it sits).
pub fn walk(xml: &str, records: &[&str], mut each: impl FnMut(Item)) {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut seen_root = false;
    let mut number = 0u64;
    loop {
        let Ok(event) = reader.read_event() else {
            each(Item::Broken(
                number.max(1),
                "the XML is malformed here; reading stopped",
            ));
            return;
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if stack.is_empty() => {
                let name = e.local_name().into_inner().to_string();
                if !seen_root {
                    seen_root = true;
                    each(Item::Root(name));
                } else if records.contains(&name.as_str()) {
                    number += 1;
                    let node = Node {
                        name,
                        ..Node::default()
                    };
                    if matches!(event, Event::Empty(_)) {
                        each(Item::Record(number, node));
                    } else {
                        stack.push(node);
                    }
                }
            }
            Event::Start(e) => stack.push(Node {
                name: e.local_name().into_inner().to_string(),
                ..Node::default()
            }),
            Event::Empty(e) => {
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node {
                        name: e.local_name().into_inner().to_string(),
                        ..Node::default()
                    });
                }
            }
            Event::End(_) => {
                if let Some(mut node) = stack.pop() {
                    node.text = node.text.trim().to_string();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => each(Item::Record(number, node)),
                    }
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => top.text.push(c),
                        _ => top.text.push_str(predefined(&r)),
                    }
                }
            }
            Event::Eof => {
                if !stack.is_empty() {
                    each(Item::Broken(number, "the document ends inside a record"));
                }
                return;
            }
            _ => {}
        }
    }
}

fn predefined(name: &str) -> &'static str {
    match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "apos" => "'",
        "quot" => "\"",
        _ => "\u{FFFD}",
    }
}
