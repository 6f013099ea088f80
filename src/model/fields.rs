//! `field:value` pairs of a Redis reply, kept as the reply's own text plus an index.
//!
//! An `INFO ALL` answer has some 250 plain fields. Copying each name and value into its
//! own `String` and hashing it with SipHash took most of a collection round's CPU; here a
//! round keeps the text it received, the spans of each pair, and a small open-addressing
//! index: three allocations, whatever the number of fields.

use std::borrow::Cow;
use std::fmt::{self, Write};
use std::ops::Range;

/// The longest label value taken from a reply (a command name, an error prefix, a
/// replica's address), in bytes. Redis's own are a few dozen at most.
pub const MAX_LABEL_BYTES: usize = 128;

/// The longest error message built from a reply, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256;

/// A label value from text a server sent: control characters become U+FFFD and the value
/// is cut to [`MAX_LABEL_BYTES`] on a character boundary. Borrows when the text is clean,
/// which real Redis text always is.
pub fn clean_label(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LABEL_BYTES && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX_LABEL_BYTES));
    for c in text.chars() {
        let c = if c.is_control() { '\u{FFFD}' } else { c };
        if out.len() + c.len_utf8() > MAX_LABEL_BYTES {
            break;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A message from text a server sent: control characters escaped (`\r`, `\n`,
/// `\u{1b}`), so it cannot forge log lines or terminal sequences, and cut to
/// [`MAX_MESSAGE_BYTES`] with a trailing `...`.
pub fn clean_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_BYTES + 3));
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > MAX_MESSAGE_BYTES {
            out.truncate(before);
            out.push_str("...");
            break;
        }
    }
    out
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    text: String,
    /// (name, value) byte ranges into `text`, in the order of the reply.
    spans: Vec<(Span, Span)>,
    /// Open addressing with linear probing: 0 is empty, else an index into `spans` + 1.
    index: Vec<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn of(range: Range<usize>) -> Self {
        Self {
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl Fields {
    /// An empty table over `text`; `expected` pairs are indexed without growing.
    pub fn new(text: String, expected: usize) -> Self {
        let slots = (expected.max(8) * 2).next_power_of_two();
        Self {
            text,
            spans: Vec::with_capacity(expected),
            index: vec![0; slots],
        }
    }

    /// Adds a pair, given as byte ranges of `text()`. A name given twice keeps its first
    /// value. Ranges past `u32::MAX` or not on character boundaries are ignored.
    pub fn push(&mut self, name: Range<usize>, value: Range<usize>) {
        let valid = |r: &Range<usize>| {
            r.start <= r.end && r.end <= u32::MAX as usize && self.text.get(r.clone()).is_some()
        };
        if !valid(&name) || !valid(&value) || self.spans.len() >= u16::MAX as usize - 1 {
            return;
        }
        if (self.spans.len() + 1) * 2 > self.index.len() {
            self.grow();
        }
        let key = &self.text[name.clone()];
        let mask = self.index.len() - 1;
        let mut slot = hash(key) & mask;
        loop {
            match self.index[slot] {
                0 => break,
                i if self.name(i as usize - 1) == key => return,
                _ => slot = (slot + 1) & mask,
            }
        }
        self.spans.push((Span::of(name), Span::of(value)));
        self.index[slot] = self.spans.len() as u16;
    }

    fn grow(&mut self) {
        let slots = self.index.len() * 2;
        self.index = vec![0; slots];
        let mask = slots - 1;
        for i in 0..self.spans.len() {
            let mut slot = hash(self.name(i)) & mask;
            while self.index[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.index[slot] = i as u16 + 1;
        }
    }

    fn name(&self, i: usize) -> &str {
        &self.text[self.spans[i].0.range()]
    }

    fn value(&self, i: usize) -> &str {
        &self.text[self.spans[i].1.range()]
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let mask = self.index.len().checked_sub(1)?;
        let mut slot = hash(name) & mask;
        loop {
            match self.index[slot] {
                0 => return None,
                i if self.name(i as usize - 1) == name => return Some(self.value(i as usize - 1)),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Every pair, in the order of the reply.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.spans.len()).map(|i| (self.name(i), self.value(i)))
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// FxHash (as in rustc): fast on short keys; the keys are Redis's own field names.
fn hash(key: &str) -> usize {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h: u64 = 0;
    let mut bytes = key.as_bytes();
    while bytes.len() >= 8 {
        let (chunk, rest) = bytes.split_at(8);
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
        bytes = rest;
    }
    for &b in bytes {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    // The high bits mix best.
    (h >> 32) as usize ^ h as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Fields {
        let mut text = String::new();
        let mut ranges = Vec::new();
        for (k, v) in pairs {
            let k0 = text.len();
            text.push_str(k);
            let v0 = text.len() + 1;
            text.push(':');
            text.push_str(v);
            ranges.push((k0..k0 + k.len(), v0..v0 + v.len()));
            text.push('\n');
        }
        let mut f = Fields::new(text, 2);
        for (k, v) in ranges {
            f.push(k, v);
        }
        f
    }

    #[test]
    fn finds_every_field_and_grows() {
        let names: Vec<String> = (0..500).map(|i| format!("field_{i}")).collect();
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let f = table(&pairs);
        assert_eq!(f.len(), 500);
        for n in &names {
            assert_eq!(f.get(n), Some("v"), "{n}");
        }
        assert_eq!(f.get("field_500"), None);
        assert_eq!(f.get(""), None);
    }

    #[test]
    fn the_first_of_two_equal_names_wins_and_order_is_kept() {
        let f = table(&[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
        assert_eq!(format!("{f:?}"), r#"{"a": "1", "b": "2"}"#);
    }

    #[test]
    fn labels_from_a_server_are_clean_and_bounded() {
        assert!(matches!(
            clean_label("config|get"),
            Cow::Borrowed("config|get")
        ));
        assert_eq!(
            clean_label("a\r\nb\x1b[31m\0"),
            "a\u{FFFD}\u{FFFD}b\u{FFFD}[31m\u{FFFD}"
        );
        let long = "é".repeat(100);
        let cut = clean_label(&long);
        assert!(
            cut.len() <= MAX_LABEL_BYTES && cut.len() == 128,
            "{}",
            cut.len()
        );
        assert!(long.starts_with(cut.as_ref()));
    }

    #[test]
    fn messages_from_a_server_are_escaped_and_bounded() {
        assert_eq!(
            clean_message("ERR x\r\n2025 ERROR forged\x1b[2J"),
            "ERR x\\r\\n2025 ERROR forged\\u{1b}[2J"
        );
        let long = clean_message(&"\n".repeat(1000));
        assert!(long.len() <= MAX_MESSAGE_BYTES + 3 && long.ends_with("..."));
        assert!(!long.contains('\n'));
        assert_eq!(clean_message("plain"), "plain");
    }

    #[test]
    fn bad_ranges_are_ignored() {
        let mut f = Fields::new("é:1".into(), 1);
        f.push(0..1, 3..4);
        f.push(0..2, 9..10);
        assert!(f.is_empty());
        assert_eq!(Fields::default().get("x"), None);
    }
}
