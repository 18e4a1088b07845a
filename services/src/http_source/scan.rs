//! A single pass over a page in its common shape: an object whose list and next link are
//! members of its own, the list's records objects whose key, offset and timestamp are members
//! of their own. It checks the JSON as it goes (RFC 8259) and finds every part by where it
//! is in the body, building nothing. Anything else — another shape, a member name with an
//! escape, JSON it does not accept — is `None`, and the page is read by the general reader,
//! which also says what is wrong.

/// Deeper than this, the general reader decides (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;

/// A record's JSON text, and the values at its key, offset and timestamp pointers (none for
/// null), raw JSON borrowed from the body.
pub(super) type RawRecord<'a> = (&'a str, [Option<&'a str>; 3]);

/// What one pass found: raw JSON text borrowed from the body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scanned<'a> {
    /// The records.
    pub(super) records: Vec<RawRecord<'a>>,
    /// The value at the next pointer (none for null).
    pub(super) next: Option<&'a str>,
}

/// The member name a pointer names where it is one plain token (`/name`, no `~`).
fn member(pointer: &str) -> Option<&str> {
    pointer
        .strip_prefix('/')
        .filter(|token| !token.contains(['/', '~']))
}

/// The page `text` with its list at pointer `list`, the next link at pointer `next`, and
/// the record pointers `fields` (`None` for a pointer not set); `None` unless each pointer
/// names a member.
pub(super) fn page<'a>(
    text: &'a str,
    list: &str,
    next: Option<&str>,
    fields: [Option<&str>; 3],
) -> Option<Scanned<'a>> {
    let list = member(list)?;
    let next = match next {
        Some(pointer) => Some(member(pointer)?),
        None => None,
    };
    let mut names = [None; 3];
    for (name, pointer) in names.iter_mut().zip(fields) {
        if let Some(pointer) = pointer {
            *name = Some(member(pointer)?);
        }
    }
    if next == Some(list) {
        return None;
    }
    let mut scan = Scanner { text, at: 0 };
    let mut records = None;
    let mut found_next = None;
    scan.space();
    scan.object(|scan, name| {
        let name = name?;
        if name == list && records.is_none() {
            records = Some(scan.records(names)?);
        } else if Some(name) == next && found_next.is_none() {
            found_next = Some(scan.value_text(1)?);
        } else {
            scan.value(1)?;
        }
        Some(())
    })?;
    scan.space();
    if scan.at != text.len() {
        return None;
    }
    Some(Scanned {
        records: records?,
        next: found_next.filter(|v| *v != "null"),
    })
}

/// Whether a byte ends the plain contents of a string: a quote, a backslash, or a control
/// character (which JSON does not allow there).
fn special(byte: u8) -> bool {
    (byte == b'"') | (byte == b'\\') | (byte < 0x20)
}

/// The number of plain string bytes `bytes` starts with (all of them where none is
/// [`special`]): a block at a time, each block's bytes tested together without an early
/// exit (which lets the compiler compare them as one vector), then the block that has one
/// byte by byte.
fn plain(bytes: &[u8]) -> usize {
    const BLOCK: usize = 16;
    let mut clear = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if block
            .iter()
            .fold(false, |found, byte| found | special(*byte))
        {
            break;
        }
        clear += BLOCK;
    }
    let rest = &bytes[clear..];
    clear
        + rest
            .iter()
            .position(|byte| special(*byte))
            .unwrap_or(rest.len())
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The list: each element's text, and for an object its fields' values.
    fn records(&mut self, fields: [Option<&str>; 3]) -> Option<Vec<RawRecord<'a>>> {
        // Room for a record every 128 bytes of the page: most pages' lists without growing,
        // and never more than half the page's own size.
        let mut records = Vec::with_capacity(self.text.len() / 128);
        self.array(|scan| {
            let start = scan.at;
            let mut found = [None; 3];
            if fields.iter().all(Option::is_none) {
                scan.value(2)?;
            } else {
                // A record that is not an object: the general reader names it.
                scan.object(|scan, name| {
                    let name = name?;
                    let wanted: [bool; 3] =
                        std::array::from_fn(|i| found[i].is_none() && fields[i] == Some(name));
                    if wanted.contains(&true) {
                        let value = scan.value_text(3)?;
                        for (slot, _) in found.iter_mut().zip(wanted).filter(|(_, w)| *w) {
                            *slot = Some(value);
                        }
                    } else {
                        scan.value(3)?;
                    }
                    Some(())
                })?;
            }
            let record = scan.text.get(start..scan.at)?;
            records.push((record, found.map(|v| v.filter(|v| *v != "null"))));
            Some(())
        })?;
        Some(records)
    }

    /// After an element of a list or a member of an object: whether another follows (`,`)
    /// or `close` ends them.
    fn another(&mut self, close: u8) -> Option<bool> {
        self.space();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.space();
                Some(true)
            }
            byte if byte == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A list, `element` called with the scanner before each element, which it reads.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.space();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            element(self)?;
            if !self.another(b']')? {
                return Some(());
            }
        }
    }

    /// An object, `member` called with each member's name (none where it has an escape:
    /// only the general reader undoes them) with the scanner before its value, which
    /// `member` reads.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Option<&'a str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.space();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let (name, escaped) = self.string()?;
            self.space();
            self.eat(b':')?;
            self.space();
            member(self, (!escaped).then_some(name))?;
            if !self.another(b'}')? {
                return Some(());
            }
        }
    }

    /// A value's text.
    fn value_text(&mut self, depth: usize) -> Option<&'a str> {
        let start = self.at;
        self.value(depth)?;
        self.text.get(start..self.at)
    }

    /// Any value, checked and passed over.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(|scan, _| scan.value(depth + 1)),
            b'[' => self.array(|scan| scan.value(depth + 1)),
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let rest = self.text.get(self.at..)?;
        rest.starts_with(word).then(|| self.at += word.len())
    }

    /// A string: its contents as written, and whether they have an escape.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at += plain(bytes.get(self.at..)?);
            match *bytes.get(self.at)? {
                b'"' => {
                    let contents = self.text.get(start..self.at)?;
                    self.at += 1;
                    return Some((contents, escaped));
                }
                b'\\' => escaped = true,
                // A control character: not JSON.
                _ => return None,
            }
            match *bytes.get(self.at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                b'u' => {
                    let hex = bytes.get(self.at + 2..self.at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 6;
                }
                _ => return None,
            }
        }
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }
}
