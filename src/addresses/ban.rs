//! Reading the Base Adresse Nationale's CSV format (`adresses-XX.csv[.gz]`): `;`-separated,
//! UTF-8, a header line naming the columns (`id;id_fantoir;numero;rep;nom_voie;code_postal;
//! code_insee;nom_commune;…;lon;lat;…`). Columns are found by name; those not used are ignored.
//! Rows are read one at a time from any reader, so a département's file is never held whole.

use std::io::Read;

use crate::location::WgsPoint;

use super::normalise::{normalise, repetition};

/// The columns read from a BAN file.
pub const COLUMNS: [&str; 9] = [
    "id",
    "numero",
    "rep",
    "nom_voie",
    "code_postal",
    "code_insee",
    "nom_commune",
    "lon",
    "lat",
];

/// An address as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    /// Line in the file (the header is line 1).
    pub line: u64,
    pub id: String,
    pub numero: i32,
    pub rep: String,
    pub nom_voie: String,
    pub code_postal: String,
    pub code_insee: String,
    pub nom_commune: String,
    pub point: WgsPoint,
    /// Street, postcode and commune, normalised (see [`super::normalise`]).
    pub search: String,
}

/// A refused line of the file: which line, which column, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column (`lon`, `numero`…), or `line` when the line as a whole is wrong.
    pub field: String,
    pub detail: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.detail)
    }
}

/// Bad lines reported at most; the others are counted.
pub const MAX_REPORTED: usize = 100;

/// What reading a file found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Data lines read.
    pub rows: u64,
    /// The first [`MAX_REPORTED`] bad lines.
    pub bad: Vec<BadLine>,
    /// How many lines were bad in all.
    pub bad_count: u64,
}

/// Longest text accepted in a column (longer is not an address).
const MAX_TEXT: usize = 200;

fn text(
    record: &csv::StringRecord,
    index: usize,
    name: &str,
    required: bool,
) -> Result<String, (String, String)> {
    let value = record.get(index).unwrap_or_default().trim();
    if required && value.is_empty() {
        return Err((name.to_owned(), "is empty".to_owned()));
    }
    if value.chars().count() > MAX_TEXT {
        return Err((
            name.to_owned(),
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    if value.contains('\0') {
        return Err((name.to_owned(), "contains a NUL character".to_owned()));
    }
    Ok(value.to_owned())
}

fn coordinate(
    record: &csv::StringRecord,
    index: usize,
    name: &str,
) -> Result<f64, (String, String)> {
    let value = text(record, index, name, true)?;
    value
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| (name.to_owned(), format!("`{value}` is not a number")))
}

/// One data line as an address, or the first problem found in it.
fn address(
    record: &csv::StringRecord,
    at: &[usize; 9],
    line: u64,
) -> Result<Address, (String, String)> {
    let id = text(record, at[0], "id", true)?;
    let numero_text = text(record, at[1], "numero", true)?;
    let numero = numero_text
        .parse::<i32>()
        .ok()
        .filter(|n| (0..=99_999).contains(n))
        .ok_or_else(|| {
            (
                "numero".to_owned(),
                format!("`{numero_text}` is not a house number (0 to 99999)"),
            )
        })?;
    let rep = repetition(&text(record, at[2], "rep", false)?);
    if rep.len() > 20 {
        return Err(("rep".to_owned(), "is longer than 20 characters".to_owned()));
    }
    let nom_voie = text(record, at[3], "nom_voie", true)?;
    let code_postal = text(record, at[4], "code_postal", false)?;
    if !(code_postal.is_empty()
        || (code_postal.len() == 5 && code_postal.bytes().all(|b| b.is_ascii_digit())))
    {
        return Err((
            "code_postal".to_owned(),
            format!("`{code_postal}` is not a postcode (five digits)"),
        ));
    }
    let code_insee = text(record, at[5], "code_insee", true)?;
    if !(code_insee.len() == 5 && code_insee.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Err((
            "code_insee".to_owned(),
            format!("`{code_insee}` is not an INSEE code (five characters)"),
        ));
    }
    let nom_commune = text(record, at[6], "nom_commune", true)?;
    let lon = coordinate(record, at[7], "lon")?;
    let lat = coordinate(record, at[8], "lat")?;
    let point = WgsPoint::new(lon, lat).map_err(|e| ("lon/lat".to_owned(), e.to_string()))?;
    let search = normalise(&format!("{nom_voie} {code_postal} {nom_commune}"));
    Ok(Address {
        line,
        id,
        numero,
        rep,
        nom_voie,
        code_postal,
        code_insee,
        nom_commune,
        point,
        search,
    })
}

/// Addresses handed over at a time.
pub const CHUNK: usize = 10_000;

/// Reads a BAN file from `input`, handing its addresses to `on_rows` in chunks of
/// [`CHUNK`], in file order, and `progress` the lines read so far. Once a line is bad, no
/// more addresses are handed over (nothing will be imported), but every line is still read so
/// that all the bad ones are reported. An error is a file that is not in the format at all
/// (no header, a column missing, not UTF-8 in the header).
pub fn read(
    input: impl Read,
    progress: &mut dyn FnMut(u64),
    on_rows: &mut dyn FnMut(Vec<Address>),
) -> Result<Scan, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(false)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .clone();
    let names: Vec<&str> = headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    let mut at = [0usize; 9];
    let mut missing = Vec::new();
    for (slot, column) in at.iter_mut().zip(COLUMNS) {
        match names.iter().position(|n| *n == column) {
            Some(i) => *slot = i,
            None => missing.push(column),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "line 1: not a Base Adresse Nationale CSV file (`;`-separated, with a header line): no column {} (columns: {})",
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            names.join(";").chars().take(300).collect::<String>()
        ));
    }
    let mut outcome = Scan::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut record = csv::StringRecord::new();
    let bad = |outcome: &mut Scan, line: u64, field: String, detail: String| {
        outcome.bad_count += 1;
        if outcome.bad.len() < MAX_REPORTED {
            outcome.bad.push(BadLine {
                line,
                field,
                detail,
            });
        }
    };
    loop {
        // The line this record starts on: its position as the reader saw it.
        let line = reader.position().line().max(2);
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                outcome.rows += 1;
                let line = record.position().map_or(line, |p| p.line());
                match address(&record, &at, line) {
                    Ok(address) if outcome.bad_count == 0 => {
                        chunk.push(address);
                        if chunk.len() == CHUNK {
                            on_rows(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
                            progress(outcome.rows);
                        }
                    }
                    Ok(_) => {}
                    Err((field, detail)) => bad(&mut outcome, line, field, detail),
                }
            }
            Err(error) => {
                outcome.rows += 1;
                let line = error.position().map_or(line, |p| p.line());
                let detail = match error.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields where the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
                    csv::ErrorKind::Io(e) => {
                        return Err(format!("cannot read the file after line {line}: {e}"));
                    }
                    _ => error.to_string(),
                };
                bad(&mut outcome, line, "line".to_owned(), detail);
                if !matches!(
                    error.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    // The reader cannot go on after other errors.
                    break;
                }
            }
        }
    }
    if outcome.bad_count == 0 && !chunk.is_empty() {
        on_rows(chunk);
    }
    progress(outcome.rows);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const HEADER: &str = "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;code_insee_ancienne_commune;nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;libelle_acheminement;nom_afnor;source_position;source_nom_voie;certification_commune;cad_parcelles";

    fn read_all(text: &str) -> (Vec<Address>, Scan) {
        let mut rows = Vec::new();
        let outcome = read(text.as_bytes(), &mut |_| {}, &mut |chunk| {
            rows.extend(chunk)
        })
        .unwrap();
        (rows, outcome)
    }

    #[test]
    fn a_ban_file_is_read_by_column_name() {
        let text = format!(
            "{HEADER}\n92050_1234_00012_bis;92050_1234;12;bis;Rue de la Paix;92000;92050;Nanterre;;;643000;6865000;2.2;48.89;entrée;;;NANTERRE;RUE DE LA PAIX;commune;commune;1;\n"
        );
        let (rows, outcome) = read_all(&text);
        assert_eq!(outcome.rows, 1);
        assert!(outcome.bad.is_empty());
        let a = &rows[0];
        assert_eq!(
            (a.line, a.id.as_str(), a.numero, a.rep.as_str()),
            (2, "92050_1234_00012_bis", 12, "bis")
        );
        assert_eq!((a.point.lon(), a.point.lat()), (2.2, 48.89));
        assert_eq!(a.search, "rue de la paix 92000 nanterre");
    }

    #[test]
    fn bad_lines_are_named_with_their_field() {
        let good = "a;;1;;Rue A;92000;92050;Nanterre;;;;;2.2;48.89;;;;;;;;;";
        let text = format!(
            "{HEADER}\n{good}\nb;;x;;Rue B;92000;92050;Nanterre;;;;;2.2;48.89;;;;;;;;;\nc;;1;;Rue C;92000;92050;Nanterre;;;;;2.2;91;;;;;;;;;\nd;;1\n{good}\ne;;1;;;92000;92050;Nanterre;;;;;2.2;48.9;;;;;;;;;\n"
        );
        let (_, outcome) = read_all(&text);
        assert_eq!(outcome.rows, 6);
        let found: Vec<(u64, &str)> = outcome
            .bad
            .iter()
            .map(|b| (b.line, b.field.as_str()))
            .collect();
        assert_eq!(
            found,
            [(3, "numero"), (4, "lon/lat"), (5, "line"), (7, "nom_voie")]
        );
        assert!(
            outcome.bad[0].detail.contains("`x`"),
            "{:?}",
            outcome.bad[0]
        );
        assert!(
            outcome.bad[2].detail.contains("has 3 fields"),
            "{:?}",
            outcome.bad[2]
        );
    }

    #[test]
    fn a_file_without_the_columns_is_refused_at_once() {
        let error = read("a,b,c\n1,2,3\n".as_bytes(), &mut |_| {}, &mut |_| {}).unwrap_err();
        assert!(error.contains("no column `id`"), "{error}");
        assert!(read("".as_bytes(), &mut |_| {}, &mut |_| {}).is_err());
    }

    proptest::proptest! {
        /// Any bytes after a valid header are read or refused line by line, never a panic,
        /// and a refusal always names a line and a field.
        #[test]
        fn any_lines_are_read_or_refused_clearly(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut text = format!("{HEADER}\n").into_bytes();
            text.extend(body);
            let mut rows = Vec::new();
            if let Ok(outcome) = read(text.as_slice(), &mut |_| {}, &mut |chunk| rows.extend(chunk)) {
                for bad in &outcome.bad {
                    proptest::prop_assert!(bad.line >= 2 && !bad.field.is_empty() && !bad.detail.is_empty());
                }
                if outcome.bad_count == 0 {
                    proptest::prop_assert_eq!(rows.len() as u64, outcome.rows);
                }
            }
        }
    }
}
