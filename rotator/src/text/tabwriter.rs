//! The one table writer: Go's `text/tabwriter` with a space pad character, as kubeadm uses it
//! (`tabwriter.NewWriter(out, minwidth, tabwidth, padding, ' ', 0)`), serving every table
//! kubepki prints — kubeadm's `check-expiration` text byte for byte, and the CLI's own tables.
//!
//! Text is cut into cells by tabs and into lines by newlines ([`layout`]), or given as rows of
//! [`Cell`]s ([`Table`]). A cell ended by a tab belongs to a column; the last cell of a line
//! does not. A column block is a run of consecutive lines that have a cell in that column; its
//! width is the widest cell plus `padding`, at least `minwidth`. Cells are padded with spaces
//! to their block's width; empty cells too. With a space pad character the tab width plays no
//! part.
//!
//! Colour is a property of a cell, not of its text: a [`Cell`] painted with a [`Tone`] is
//! measured by its text alone and written as the escape code, the text, the reset, then the
//! padding, so that escape codes never widen a column (the job of Go's `FilterHTML` and
//! escape characters, without their markup in the text). [`Tone`] is the one palette of every
//! coloured output: the same meaning, the same colour.
//!
//! ```
//! use kubepki_rotator::text::{Cell, Table, Tone};
//!
//! let mut table = Table::new(0, 3).trim_trailing_spaces();
//! table.row(["STATUS", "NAME", "PATH"]);
//! table.row([Cell::painted("ok", Tone::Good), "apiserver".into(), "pki/apiserver.crt".into()]);
//! table.row(["critical", "admin.conf", ""]);
//! assert_eq!(
//!     table.render(),
//!     "STATUS     NAME         PATH\n\
//!      \x1b[32mok\x1b[0m         apiserver    pki/apiserver.crt\n\
//!      critical   admin.conf\n"
//! );
//! ```

/// Lays out tab-separated `text` exactly as Go's tabwriter does (no trimming).
pub(crate) fn layout(text: &str, minwidth: usize, padding: usize) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut table = Table::new(minwidth, padding);
    for line in body.split('\n') {
        table.row(line.split('\t'));
    }
    let mut out = table.render();
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// A colour of the palette, named by what it means.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Tone {
    /// Fine: green.
    Good,
    /// Needs attention soon: yellow.
    Warning,
    /// Needs action now (expired, critical, missing): red.
    Critical,
    /// Could not be judged, the input is broken: magenta.
    Broken,
    /// Worth knowing, nothing to do: cyan.
    Info,
    /// Not looked at: dim.
    Muted,
}

impl Tone {
    /// The ANSI SGR parameter.
    fn code(self) -> &'static str {
        match self {
            Self::Good => "32",
            Self::Warning => "33",
            Self::Critical => "31",
            Self::Broken => "35",
            Self::Info => "36",
            Self::Muted => "2",
        }
    }

    /// `text` in this colour: `ESC[<code>m text ESC[0m`.
    pub fn paint(self, text: &str) -> String {
        format!("\x1b[{}m{text}\x1b[0m", self.code())
    }
}

/// One cell of a [`Table`]: its text, and the colour it is written in, if any.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl Cell {
    /// A plain cell.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), tone: None }
    }

    /// A cell written in `tone`; its width is its text's.
    pub fn painted(text: impl Into<String>, tone: Tone) -> Self {
        Self { text: text.into(), tone: Some(tone) }
    }

    /// A cell written in `tone` when there is one, else plain.
    pub fn toned(text: impl Into<String>, tone: Option<Tone>) -> Self {
        Self { text: text.into(), tone }
    }

    /// Its width on a terminal: characters, not bytes, and never the escape codes.
    fn width(&self) -> usize {
        self.text.chars().count()
    }

    fn write(&self, out: &mut String) {
        match self.tone {
            Some(tone) => out.push_str(&tone.paint(&self.text)),
            None => out.push_str(&self.text),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Self {
        Self::new(text.as_str())
    }
}

/// Rows of cells laid out in Go tabwriter's columns (see the module doc): each row one line,
/// its last cell outside any column.
#[derive(Clone, Debug)]
pub struct Table {
    rows: Vec<Vec<Cell>>,
    minwidth: usize,
    padding: usize,
    trim: bool,
}

impl Table {
    /// An empty table whose columns are at least `minwidth` wide and `padding` wider than
    /// their widest cell.
    pub fn new(minwidth: usize, padding: usize) -> Self {
        Self { rows: Vec::new(), minwidth, padding, trim: false }
    }

    /// Ends no line in white space: a row whose last cells are empty stops at its last text.
    pub fn trim_trailing_spaces(mut self) -> Self {
        self.trim = true;
        self
    }

    /// Adds a row, one line of output.
    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The laid-out lines, without their newlines.
    pub fn lines(&self) -> Vec<String> {
        let mut w = Writer { table: self, widths: Vec::new(), lines: Vec::with_capacity(self.rows.len()) };
        w.format(0, self.rows.len());
        w.lines
    }

    /// The laid-out text: every line ended by a newline; empty for no rows.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

struct Writer<'a> {
    table: &'a Table,
    widths: Vec<usize>,
    lines: Vec<String>,
}

impl Writer<'_> {
    /// Go's `format`: finds the column blocks of column `widths.len()` among lines
    /// `line0..line1`, recursing into each block for the columns to its right.
    fn format(&mut self, mut line0: usize, line1: usize) {
        let rows = &self.table.rows;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= rows[this].len() {
                this += 1;
                continue;
            }
            // A block of lines with a cell in this column starts here.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.table.minwidth;
            while this < line1 && column + 1 < rows[this].len() {
                width = width.max(rows[this][column].width() + self.table.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for row in &self.table.rows[line0..line1] {
            let mut line = String::new();
            for (j, cell) in row.iter().enumerate() {
                cell.write(&mut line);
                if let Some(&width) = self.widths.get(j) {
                    line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width())));
                }
            }
            if self.table.trim {
                line.truncate(line.trim_end().len());
            }
            self.lines.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cell, Table, Tone, layout};

    #[test]
    fn columns_are_widest_cell_plus_padding_with_a_minimum() {
        let got = layout("a\tbb\tc\nccc\td\te\n", 0, 1);
        assert_eq!(got, "a   bb c\nccc d  e\n");
        let got = layout("a\tb\n", 10, 3);
        assert_eq!(got, "a         b\n");
    }

    #[test]
    fn the_last_cell_of_a_line_is_not_in_a_column() {
        // "long" ends its line, so it does not widen column 0 of the lines around it.
        let got = layout("x\ty\nlonglonglong\nx\ty\n", 0, 1);
        assert_eq!(got, "x y\nlonglonglong\nx y\n");
    }

    #[test]
    fn a_line_without_a_cell_ends_the_block() {
        let got = layout("a\t1\n\nbbbbbb\t2\n", 0, 2);
        assert_eq!(got, "a  1\n\nbbbbbb  2\n");
    }

    #[test]
    fn a_line_with_fewer_cells_splits_the_blocks_to_its_right() {
        // "xx" ends its line after column 0, so column 1 has two blocks of their own widths.
        let got = layout("a\tb\tc\nxx\ty\nlong-a\tlong-b\tz\n", 0, 1);
        assert_eq!(got, "a      b c\nxx     y\nlong-a long-b z\n");
    }

    #[test]
    fn empty_cells_are_padded_to_the_column() {
        let got = layout("NAME\tEXP\tCA\nn1\tdate1\tca\n!MISSING! n2\t\t\n", 0, 1);
        assert_eq!(got, "NAME         EXP   CA\nn1           date1 ca\n!MISSING! n2       \n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(layout("é\tx\nab\ty\n", 0, 1), "é  x\nab y\n");
    }

    #[test]
    fn text_without_a_final_newline_keeps_none() {
        assert_eq!(layout("a\tb\nccc\td", 0, 1), "a   b\nccc d");
        assert_eq!(layout("", 0, 1), "");
    }

    #[test]
    fn escape_codes_of_a_painted_cell_do_not_count_in_its_width() {
        let mut t = Table::new(0, 2);
        t.row([Cell::painted("ok", Tone::Good), Cell::new("x")]);
        t.row(["warn", "y"]);
        assert_eq!(t.lines(), ["\x1b[32mok\x1b[0m    x", "warn  y"]);
    }

    #[test]
    fn trimming_drops_the_padding_of_empty_last_cells_only() {
        let mut t = Table::new(0, 3).trim_trailing_spaces();
        t.row(["ENDPOINT", "CHECK", "REASON"]);
        t.row(["", "chain", ""]);
        assert_eq!(t.render(), "ENDPOINT   CHECK   REASON\n           chain\n");
        let mut untrimmed = Table::new(0, 3);
        untrimmed.row(["a", ""]);
        untrimmed.row(["bb", "c"]);
        assert_eq!(untrimmed.render(), "a    \nbb   c\n");
    }

    #[test]
    fn cells_may_hold_tabs_and_newlines_without_splitting() {
        let mut t = Table::new(0, 1);
        t.row(["a\tb", "c"]);
        t.row(["d", "e"]);
        assert_eq!(t.render(), "a\tb c\nd   e\n");
        assert!(Table::new(0, 1).render().is_empty());
    }
}
