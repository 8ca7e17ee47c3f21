//! The report as a PDF, drawn with `pdf-writer` (the PDF layer of the Typst project): A4 pages
//! of text in the standard Helvetica fonts (nothing embedded, WinAnsi encoding: French and
//! English text), the districts as filled paths, the curve as lines. No browser, no font files.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::{Report, Words};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Five classes, light to dark (ColorBrewer GnBu, readable by most colour-blind people).
const CLASSES: [(f32, f32, f32); 5] = [
    (0.941, 0.976, 0.910),
    (0.729, 0.894, 0.737),
    (0.482, 0.800, 0.769),
    (0.263, 0.635, 0.792),
    (0.031, 0.408, 0.675),
];
/// A closed line of (longitude, latitude).
type Ring = Vec<(f64, f64)>;

/// Withheld areas.
const GREY: (f32, f32, f32) = (0.85, 0.85, 0.85);

/// `text` in WinAnsiEncoding (the standard fonts' Latin encoding); what it cannot hold is `?`.
pub fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{202f}' => 0xa0,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'Œ' => 0x8c,
            'œ' => 0x9c,
            _ => b'?',
        })
        .collect()
}

/// Width of `text` in Helvetica at `size`: digits and the usual signs exactly (they are what is
/// aligned), letters by an average that errs on the wide side (they are only wrapped).
fn width(text: &str, size: f32, bold: bool) -> f32 {
    let units: f32 = text
        .chars()
        .map(|c| match c {
            '0'..='9' | '$' | '#' => 556.0,
            ' ' | '.' | ',' | ':' | ';' | 'i' | 'l' | 'j' | '!' | '|' | '\'' => 278.0,
            '%' => 889.0,
            '-' | '(' | ')' => 333.0,
            'm' | 'w' | 'M' | 'W' => 889.0,
            'A'..='Z' => 722.0,
            _ => 556.0,
        })
        .sum();
    units * size / 1000.0 * if bold { 1.05 } else { 1.0 }
}

/// `text` cut into lines no wider than `max` at `size`.
fn wrap(text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && width(&candidate, size, false) > max {
            lines.push(std::mem::replace(&mut line, word.to_owned()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A page being written, top to bottom.
struct Page {
    content: Content,
    /// Where the next line's baseline goes.
    y: f32,
}

impl Page {
    fn new() -> Self {
        Self {
            content: Content::new(),
            y: HEIGHT - MARGIN,
        }
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        self.content
            .set_fill_rgb(0.0, 0.0, 0.0)
            .begin_text()
            .set_font(if bold { BOLD } else { REGULAR }, size)
            .next_line(x, y)
            .show(Str(&win_ansi(text)))
            .end_text();
    }

    /// `text` ending at `right`.
    fn text_right(&mut self, right: f32, y: f32, size: f32, bold: bool, text: &str) {
        self.text_at(right - width(text, size, bold), y, size, bold, text);
    }

    /// A line of text at the left margin, then down.
    fn line(&mut self, size: f32, bold: bool, text: &str) {
        self.y -= size * 1.3;
        self.text_at(MARGIN, self.y, size, bold, text);
    }

    /// A paragraph wrapped to the page's width.
    fn paragraph(&mut self, size: f32, text: &str) {
        for line in wrap(text, size, WIDTH - 2.0 * MARGIN) {
            self.line(size, false, &line);
        }
        self.y -= size * 0.6;
    }

    fn rule(&mut self, y: f32, from: f32, to: f32) {
        self.content
            .set_stroke_rgb(0.6, 0.6, 0.6)
            .set_line_width(0.5)
            .move_to(from, y)
            .line_to(to, y)
            .stroke();
    }
}

/// The class (0 to 4) of a district: its progress towards the target when the campaign set
/// targets, else its count against the largest.
fn class(report: &Report, row: &super::Row) -> Option<usize> {
    let scale = |share: f64| ((share * 5.0).floor() as usize).min(4);
    if report.has_targets {
        row.progress.map(|p| scale(p.min(1.0) * 0.999))
    } else {
        let max = report.rows.iter().filter_map(|r| r.count).max()?.max(1);
        row.count.map(|c| scale(c as f64 / max as f64 * 0.999))
    }
}

/// The choropleth map of the districts in the box (`x`, `y`, `w`, `h`), its legend below.
fn map(page: &mut Page, report: &Report, words: &Words, top: f32, h: f32) {
    let (x0, w) = (MARGIN, WIDTH - 2.0 * MARGIN);
    let rings = |geometry: &serde_json::Value| -> Vec<Ring> {
        let polygons: Vec<&serde_json::Value> = match geometry["type"].as_str() {
            Some("Polygon") => vec![&geometry["coordinates"]],
            Some("MultiPolygon") => geometry["coordinates"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        polygons
            .into_iter()
            .filter_map(|p| p.as_array())
            .flatten()
            .filter_map(|ring| ring.as_array())
            .map(|ring| {
                ring.iter()
                    .filter_map(|pt| Some((pt[0].as_f64()?, pt[1].as_f64()?)))
                    .collect()
            })
            .collect()
    };
    let shapes: Vec<(&super::Row, Vec<Ring>)> = report
        .rows
        .iter()
        .map(|row| (row, rings(&row.geometry)))
        .collect();
    let points = shapes.iter().flat_map(|(_, r)| r.iter().flatten());
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let mut lat_sum = (0.0, 0usize);
    for &(lon, lat) in points {
        min_x = min_x.min(lon);
        max_x = max_x.max(lon);
        min_y = min_y.min(lat);
        max_y = max_y.max(lat);
        lat_sum = (lat_sum.0 + lat, lat_sum.1 + 1);
    }
    if lat_sum.1 == 0 {
        return;
    }
    // Longitudes shortened by the cosine of the mean latitude: shapes as on a local map.
    let squeeze = (lat_sum.0 / lat_sum.1 as f64).to_radians().cos();
    let span_x = ((max_x - min_x) * squeeze).max(1e-9);
    let span_y = (max_y - min_y).max(1e-9);
    let scale = (f64::from(w) / span_x).min(f64::from(h) / span_y);
    let (used_w, used_h) = (span_x * scale, span_y * scale);
    let left = f64::from(x0) + (f64::from(w) - used_w) / 2.0;
    let bottom = f64::from(top - h) + (f64::from(h) - used_h) / 2.0;
    let project = |(lon, lat): (f64, f64)| {
        (
            (left + (lon - min_x) * squeeze * scale) as f32,
            (bottom + (lat - min_y) * scale) as f32,
        )
    };
    for (row, rings) in &shapes {
        let (r, g, b) = class(report, row).map_or(GREY, |c| CLASSES[c]);
        page.content
            .set_fill_rgb(r, g, b)
            .set_stroke_rgb(0.25, 0.25, 0.25)
            .set_line_width(0.6);
        for ring in rings {
            for (i, &point) in ring.iter().enumerate() {
                let (px, py) = project(point);
                if i == 0 {
                    page.content.move_to(px, py);
                } else {
                    page.content.line_to(px, py);
                }
            }
            page.content.close_path();
        }
        page.content.fill_even_odd_and_stroke();
    }
    for (row, _) in &shapes {
        if let Some(center) = row.center {
            let (px, py) = project((center[0], center[1]));
            let label = &row.code;
            page.text_at(
                px - width(label, 7.0, true) / 2.0,
                py - 2.5,
                7.0,
                true,
                label,
            );
        }
    }
    // The legend.
    let mut y = top - h - 18.0;
    let mut x = MARGIN;
    let labels: Vec<String> = if report.has_targets {
        ["0–20 %", "20–40 %", "40–60 %", "60–80 %", "80–100 %"]
            .map(String::from)
            .to_vec()
    } else {
        let max = report
            .rows
            .iter()
            .filter_map(|r| r.count)
            .max()
            .unwrap_or(0);
        (0..5)
            .map(|i| format!("{}–{}", max * i / 5, max * (i + 1) / 5))
            .collect()
    };
    page.text_at(x, y, 8.0, true, words.legend(report.has_targets));
    y -= 14.0;
    for (i, label) in labels.iter().enumerate() {
        let (r, g, b) = CLASSES[i];
        page.content
            .set_fill_rgb(r, g, b)
            .set_stroke_rgb(0.25, 0.25, 0.25)
            .rect(x, y - 2.0, 12.0, 9.0)
            .fill_nonzero_and_stroke();
        page.text_at(x + 16.0, y, 8.0, false, label);
        x += 82.0;
    }
    let (r, g, b) = GREY;
    page.content
        .set_fill_rgb(r, g, b)
        .rect(x, y - 2.0, 12.0, 9.0)
        .fill_nonzero_and_stroke();
    page.text_at(x + 16.0, y, 8.0, false, words.withheld);
    page.y = y - 8.0;
}

/// The table per district, then the total: name and code, then the figures the campaign has
/// (households and the rate per 1,000 when it has households on file, target and progress when
/// it set targets), right-aligned.
fn table(page: &mut Page, report: &Report, words: &Words) {
    type Cell = fn(&super::Row, &Words) -> String;
    let mut numeric: Vec<(&str, Cell)> = vec![(words.contributions, |row, words| {
        row.count
            .map_or_else(|| words.withheld.to_owned(), |c| c.to_string())
    })];
    if report.has_households {
        numeric.push((words.households, |row, _| {
            row.households.map(|h| h.to_string()).unwrap_or_default()
        }));
        numeric.push((words.per_thousand, |row, _| {
            row.per_thousand
                .map(|r| format!("{r:.1}"))
                .unwrap_or_default()
        }));
    }
    if report.has_targets {
        numeric.push((words.target, |row, _| {
            row.target.map(|t| t.to_string()).unwrap_or_default()
        }));
        numeric.push((words.progress, |row, _| {
            row.progress
                .map(|p| format!("{:.1} %", p * 100.0))
                .unwrap_or_default()
        }));
    }
    // Right edges from the right margin leftwards, 55 points apart; names up to some 32
    // characters, codes up to some 27.
    let rights: Vec<f32> = (0..numeric.len())
        .map(|i| WIDTH - MARGIN - 55.0 * (numeric.len() - 1 - i) as f32)
        .collect();
    let code_x = MARGIN + 150.0;
    page.y -= 22.0;
    page.text_at(MARGIN, page.y, 7.5, true, words.district);
    page.text_at(code_x, page.y, 7.5, true, words.code);
    for ((title, _), right) in numeric.iter().zip(&rights) {
        page.text_right(*right, page.y, 7.5, true, title);
    }
    page.rule(page.y - 4.0, MARGIN, WIDTH - MARGIN);
    for row in &report.rows {
        page.y -= 14.0;
        page.text_at(MARGIN, page.y, 8.5, false, &row.name);
        page.text_at(code_x, page.y, 6.5, false, &row.code);
        for ((_, cell), right) in numeric.iter().zip(&rights) {
            page.text_right(*right, page.y, 9.0, false, &cell(row, words));
        }
    }
    page.rule(page.y - 5.0, MARGIN, WIDTH - MARGIN);
    page.y -= 16.0;
    page.text_at(MARGIN, page.y, 9.0, true, words.total);
    let total = report
        .total
        .map_or_else(|| words.withheld.to_owned(), |c| c.to_string());
    page.text_right(rights[0], page.y, 9.0, true, &total);
    if report.has_households {
        page.y -= 6.0;
        page.line(7.5, false, words.per_thousand_note);
    }
    page.y -= 10.0;
}

/// Contributions per week (bars) and their running total (line), over the campaign's weeks.
fn curve(page: &mut Page, report: &Report, words: &Words) {
    let (left, right) = (MARGIN + 40.0, WIDTH - MARGIN);
    let h = 170.0;
    page.line(12.0, true, words.curve_title);
    let top = page.y - 14.0;
    let bottom = top - h;
    let weeks = &report.weeks;
    let running: Vec<i64> = weeks
        .iter()
        .scan(0, |sum, (_, count)| {
            *sum += count.unwrap_or(0);
            Some(*sum)
        })
        .collect();
    let max = running.last().copied().unwrap_or(0).max(1) as f32;
    page.content
        .set_stroke_rgb(0.3, 0.3, 0.3)
        .set_line_width(0.6)
        .move_to(left, top)
        .line_to(left, bottom)
        .line_to(right, bottom)
        .stroke();
    page.text_right(left - 4.0, top - 3.0, 8.0, false, &(max as i64).to_string());
    page.text_right(left - 4.0, bottom - 3.0, 8.0, false, "0");
    if !weeks.is_empty() {
        let step = (right - left) / weeks.len() as f32;
        for (i, (_, count)) in weeks.iter().enumerate() {
            let x = left + step * i as f32;
            match count {
                Some(c) => {
                    let bar = *c as f32 / max * h;
                    let (r, g, b) = CLASSES[2];
                    page.content
                        .set_fill_rgb(r, g, b)
                        .rect(x + step * 0.15, bottom, step * 0.7, bar)
                        .fill_nonzero();
                }
                None => {
                    let (r, g, b) = GREY;
                    page.content
                        .set_fill_rgb(r, g, b)
                        .rect(x + step * 0.15, bottom, step * 0.7, 4.0)
                        .fill_nonzero();
                }
            }
        }
        let (r, g, b) = CLASSES[4];
        page.content.set_stroke_rgb(r, g, b).set_line_width(1.5);
        for (i, sum) in running.iter().enumerate() {
            let (x, y) = (
                left + step * (i as f32 + 0.5),
                bottom + *sum as f32 / max * h,
            );
            if i == 0 {
                page.content.move_to(x, y);
            } else {
                page.content.line_to(x, y);
            }
        }
        page.content.stroke();
        let first = weeks
            .first()
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let last = weeks.last().map(|(d, _)| d.to_string()).unwrap_or_default();
        page.text_at(left, bottom - 12.0, 8.0, false, &first);
        page.text_right(right, bottom - 12.0, 8.0, false, &last);
    }
    page.y = bottom - 22.0;
    page.paragraph(8.0, words.curve_note);
}

/// The whole PDF.
pub fn render(report: &Report, words: &Words) -> Vec<u8> {
    let mut pages = Vec::new();

    let mut first = Page::new();
    first.line(18.0, true, &report.title);
    first.line(11.0, false, words.subtitle);
    first.y -= 4.0;
    first.line(8.0, false, &words.stamp(report));
    first.line(8.0, false, &format!("{} {}", words.digest, report.digest));
    let top = first.y - 16.0;
    map(&mut first, report, words, top, 430.0);
    first.y -= 10.0;
    first.paragraph(8.0, &words.boundaries(&report.attribution));
    pages.push(first);

    let mut second = Page::new();
    second.line(14.0, true, words.table_title);
    table(&mut second, report, words);
    second.y -= 20.0;
    curve(&mut second, report, words);
    pages.push(second);

    let mut third = Page::new();
    third.line(14.0, true, words.method_title);
    for paragraph in words.method(report) {
        third.paragraph(9.0, &paragraph);
    }
    third.y -= 8.0;
    third.line(14.0, true, words.privacy_title);
    for paragraph in words.privacy(report) {
        third.paragraph(9.0, &paragraph);
    }
    pages.push(third);

    let count = pages.len();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let (regular, bold, info) = (Ref::new(3), Ref::new(4), Ref::new(5));
    let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(10 + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(count as i32);
    for (font, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.document_info(info)
        .title(TextStr(&report.title))
        .subject(TextStr(words.subtitle))
        .creator(TextStr("civicmap"));
    for (i, page) in pages.into_iter().enumerate() {
        let (id, content_id) = (page_ids[i], Ref::new(11 + 2 * i as i32));
        let mut writer = pdf.page(id);
        writer
            .media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT))
            .parent(tree)
            .contents(content_id);
        writer
            .resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        writer.finish();
        let mut content = page.content;
        // The page number, at the foot.
        let footer = format!("{} – {}/{}", report.title, i + 1, count);
        content
            .set_fill_rgb(0.4, 0.4, 0.4)
            .begin_text()
            .set_font(REGULAR, 7.0)
            .next_line(MARGIN, 25.0)
            .show(Str(&win_ansi(&footer)))
            .end_text();
        let raw = content.finish();
        let compressed = zlib(&raw);
        pdf.stream(content_id, &compressed)
            .filter(Filter::FlateDecode);
    }
    pdf.finish()
}

/// zlib-compressed bytes (PDF's FlateDecode).
fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(data)
        .expect("writing to memory does not fail");
    encoder.finish().expect("writing to memory does not fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_text_is_kept_and_the_rest_marked() {
        assert_eq!(
            win_ansi("Été à Nanterre"),
            b"\xc9t\xe9 \xe0 Nanterre".to_vec()
        );
        assert_eq!(
            win_ansi("l’œuvre – 5 €"),
            b"l\x92\x9cuvre \x96 5 \x80".to_vec()
        );
        assert_eq!(win_ansi("東京"), b"??".to_vec());
    }

    #[test]
    fn paragraphs_wrap_within_the_width() {
        let text = "Les figures publiées sont protégées : un compte inférieur au seuil est masqué, \
                    ainsi que ce qui permettrait de le retrouver par différence.";
        let lines = wrap(text, 9.0, 200.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| width(l, 9.0, false) <= 200.0));
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
