//! Go's `text/tabwriter` with a space pad character and no flags, as kubeadm uses it
//! (`tabwriter.NewWriter(out, minwidth, tabwidth, padding, ' ', 0)`).
//!
//! Text is cut into cells by tabs and into lines by newlines. A cell ended by a tab belongs to
//! a column; the last cell of a line does not. A column block is a run of consecutive lines
//! that have a cell in that column; its width is the widest cell plus `padding`, at least
//! `minwidth`. Cells are padded with spaces to their block's width; empty cells too. With a
//! space pad character the tab width plays no part.

/// Lays out `text` exactly as Go's tabwriter does.
pub(crate) fn layout(text: &str, minwidth: usize, padding: usize) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w =
        Writer { lines: &lines, minwidth, padding, widths: Vec::new(), out: String::with_capacity(text.len() * 2) };
    w.format(0, lines.len());
    if !text.ends_with('\n') {
        w.out.pop();
    }
    w.out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    minwidth: usize,
    padding: usize,
    widths: Vec<usize>,
    out: String,
}

impl Writer<'_> {
    /// Go's `format`: finds the column blocks of column `widths.len()` among lines
    /// `line0..line1`, recursing into each block for the columns to its right.
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A block of lines with a cell in this column starts here.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].chars().count() + self.padding);
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
        for line in &self.lines[line0..line1] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&width) = self.widths.get(j) {
                    let pad = width.saturating_sub(cell.chars().count());
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            self.out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::layout;

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
}
