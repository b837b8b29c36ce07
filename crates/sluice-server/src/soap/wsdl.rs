//! The WSDL 1.1 document of a staging table (`GET /{table}.do?WSDL`): document/literal, WS-I
//! Basic Profile 1.0 style as ServiceNow publishes it (next-features.md 3.2), with a SOAP 1.1 and
//! a SOAP 1.2 binding. Its schema is generated from the integration's definition, the same one the
//! JSON Schema and OpenAPI come from: each field an element, `minOccurs="1"` when required (and
//! without a default), `maxLength` and choices (unless a value map translates them) as facets.
//! Read shapes (`get`, `getRecords`) list the staging table's columns, all text.

use sluice_core::integration::{FieldSpec, FieldType, Integration};

use super::envelope::Operation;
use crate::xml::{is_xml_char, xml_name};

/// An attribute value: `&`, `<`, `"` escaped, what XML cannot hold as U+FFFD.
fn attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The namespace ServiceNow gives a table's WSDL (`use_unique_namespace`, its default).
pub fn namespace(table: &str) -> String {
    format!("http://www.service-now.com/{table}")
}

/// The payload key a field is read from: its name, or its `source` pointer's first token.
fn top_key(f: &FieldSpec) -> String {
    match f.source.as_deref().and_then(|p| p.strip_prefix('/')) {
        Some(p) => p.split('/').next().unwrap_or("").replace("~1", "/").replace("~0", "~"),
        None => f.name.clone(),
    }
}

fn nested(f: &FieldSpec) -> bool {
    f.source.as_deref().and_then(|p| p.strip_prefix('/')).is_some_and(|p| p.contains('/'))
}

fn mandatory(f: &FieldSpec) -> bool {
    f.required && f.default.is_none()
}

/// One input field as an element with its type and facets.
fn field_element(integration: &Integration, f: &FieldSpec) -> String {
    let min = if mandatory(f) { 1 } else { 0 };
    let name = attr(&xml_name(&top_key(f)));
    let mapped =
        integration.definition.transform.field_map.iter().any(|m| m.source == f.name && !m.value_map.is_empty());
    let base = match f.kind {
        FieldType::Integer => "xsd:integer",
        FieldType::Boolean => "xsd:boolean",
        _ => "xsd:string",
    };
    let mut facets = String::new();
    if let Some(max) = f.max_length.filter(|_| base == "xsd:string") {
        facets.push_str(&format!(r#"<xsd:maxLength value="{max}"/>"#));
    }
    if f.kind == FieldType::Choice && !mapped {
        for c in &f.choices {
            facets.push_str(&format!(r#"<xsd:enumeration value="{}"/>"#, attr(c)));
        }
    }
    if facets.is_empty() {
        return format!(r#"<xsd:element name="{name}" minOccurs="{min}" maxOccurs="1" type="{base}"/>"#);
    }
    format!(
        r#"<xsd:element name="{name}" minOccurs="{min}" maxOccurs="1"><xsd:simpleType><xsd:restriction base="{base}">{facets}</xsd:restriction></xsd:simpleType></xsd:element>"#
    )
}

/// The elements of one row to insert: top-level fields typed; a key that holds nested fields
/// (a `source` path such as `/alert/host`) as any content, required when one beneath it is.
fn row_elements(integration: &Integration) -> String {
    let fields = &integration.definition.fields;
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();
    for f in fields {
        let key = top_key(f);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        if nested(f) {
            let required = fields.iter().any(|g| top_key(g) == key && mandatory(g));
            out.push_str(&format!(
                r#"<xsd:element name="{}" minOccurs="{}" maxOccurs="1" type="xsd:anyType"/>"#,
                attr(&xml_name(&key)),
                u8::from(required)
            ));
        } else {
            out.push_str(&field_element(integration, f));
        }
    }
    out
}

/// The staging table's columns, each optional text (the shape of a read record, and of
/// `getRecords`' example values); with `prefix` (`dv_`), the display-value elements that
/// `displayvalue=all` adds.
fn column_elements(integration: &Integration, prefix: &str) -> String {
    integration
        .staging
        .visible_fields()
        .map(|c| {
            format!(
                r#"<xsd:element name="{}" minOccurs="0" maxOccurs="1" type="xsd:string"/>"#,
                attr(&xml_name(&format!("{prefix}{}", c.name)))
            )
        })
        .collect()
}

const INSERT_RESULT: &str = r#"<xsd:complexType name="InsertResult"><xsd:sequence><xsd:element name="sys_id" minOccurs="1" maxOccurs="1" type="xsd:string"/><xsd:element name="table" minOccurs="1" maxOccurs="1" type="xsd:string"/><xsd:element name="display_name" minOccurs="0" maxOccurs="1" type="xsd:string"/><xsd:element name="display_value" minOccurs="0" maxOccurs="1" type="xsd:string"/><xsd:element name="status" minOccurs="1" maxOccurs="1" type="xsd:string"/><xsd:element name="status_message" minOccurs="0" maxOccurs="1" type="xsd:string"/><xsd:element name="error_message" minOccurs="0" maxOccurs="1" type="xsd:string"/></xsd:sequence></xsd:complexType>"#;

const EXTENDED: [&str; 6] =
    ["__encoded_query", "__order_by", "__order_by_desc", "__limit", "__first_row", "__last_row"];

fn schema(integration: &Integration, table: &str, max_records: usize) -> String {
    let ns = attr(&namespace(table));
    let mut s = format!(r#"<xsd:schema elementFormDefault="unqualified" targetNamespace="{ns}">"#);
    s.push_str(INSERT_RESULT);
    // Fields in any order (xsd:all): raw clients send them as they like, zeep as listed.
    s.push_str(&format!(
        r#"<xsd:complexType name="Row"><xsd:all>{}</xsd:all></xsd:complexType>"#,
        row_elements(integration)
    ));
    s.push_str(&format!(
        r#"<xsd:complexType name="Record"><xsd:all>{}{}</xsd:all></xsd:complexType>"#,
        column_elements(integration, ""),
        column_elements(integration, "dv_")
    ));
    s.push_str(r#"<xsd:element name="insert" type="tns:Row"/>"#);
    s.push_str(r#"<xsd:element name="insertResponse" type="tns:InsertResult"/>"#);
    s.push_str(&format!(
        r#"<xsd:element name="insertMultiple"><xsd:complexType><xsd:sequence><xsd:element name="record" minOccurs="1" maxOccurs="{max_records}" type="tns:Row"/></xsd:sequence></xsd:complexType></xsd:element>"#
    ));
    s.push_str(r#"<xsd:element name="insertMultipleResponse"><xsd:complexType><xsd:sequence><xsd:element name="insertResponse" minOccurs="0" maxOccurs="unbounded" type="tns:InsertResult"/></xsd:sequence></xsd:complexType></xsd:element>"#);
    s.push_str(r#"<xsd:element name="get"><xsd:complexType><xsd:sequence><xsd:element name="sys_id" minOccurs="1" maxOccurs="1" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>"#);
    s.push_str(r#"<xsd:element name="getResponse" type="tns:Record"/>"#);
    let extended: String = EXTENDED
        .iter()
        .map(|e| format!(r#"<xsd:element name="{e}" minOccurs="0" maxOccurs="1" type="xsd:string"/>"#))
        .collect();
    s.push_str(&format!(
        r#"<xsd:element name="getRecords"><xsd:complexType><xsd:all>{}{extended}</xsd:all></xsd:complexType></xsd:element>"#,
        column_elements(integration, "")
    ));
    s.push_str(r#"<xsd:element name="getRecordsResponse"><xsd:complexType><xsd:sequence><xsd:element name="getRecordsResult" minOccurs="0" maxOccurs="unbounded" type="tns:Record"/></xsd:sequence></xsd:complexType></xsd:element>"#);
    s.push_str("</xsd:schema>");
    s
}

/// A binding of every operation, for SOAP 1.1 (`soap`) or 1.2 (`soap12`).
fn binding(name: &str, prefix: &str, ns: &str) -> String {
    let mut b = format!(
        r#"<wsdl:binding name="{name}" type="tns:ServiceNowSoap"><{prefix}:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>"#
    );
    for op in Operation::ALL {
        let op = op.name();
        b.push_str(&format!(
            r#"<wsdl:operation name="{op}"><{prefix}:operation soapAction="{ns}/{op}" style="document"/><wsdl:input><{prefix}:body use="literal"/></wsdl:input><wsdl:output><{prefix}:body use="literal"/></wsdl:output></wsdl:operation>"#
        ));
    }
    b.push_str("</wsdl:binding>");
    b
}

/// The whole document; `endpoint` is the absolute `…/{table}.do?SOAP` URL.
pub fn document(integration: &Integration, endpoint: &str, max_records: usize) -> String {
    let table = &integration.definition.staging_table;
    let ns = attr(&namespace(table));
    let mut d = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    d.push_str(&format!(
        r#"<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{ns}" targetNamespace="{ns}">"#
    ));
    d.push_str(&format!("<wsdl:types>{}</wsdl:types>", schema(integration, table, max_records)));
    for op in Operation::ALL {
        let op = op.name();
        d.push_str(&format!(
            r#"<wsdl:message name="{op}SoapIn"><wsdl:part name="parameters" element="tns:{op}"/></wsdl:message><wsdl:message name="{op}SoapOut"><wsdl:part name="parameters" element="tns:{op}Response"/></wsdl:message>"#
        ));
    }
    d.push_str(r#"<wsdl:portType name="ServiceNowSoap">"#);
    for op in Operation::ALL {
        let op = op.name();
        d.push_str(&format!(
            r#"<wsdl:operation name="{op}"><wsdl:input message="tns:{op}SoapIn"/><wsdl:output message="tns:{op}SoapOut"/></wsdl:operation>"#
        ));
    }
    d.push_str("</wsdl:portType>");
    d.push_str(&binding("ServiceNowSoap", "soap", &ns));
    d.push_str(&binding("ServiceNowSoap12", "soap12", &ns));
    let location = attr(endpoint);
    d.push_str(&format!(
        r#"<wsdl:service name="ServiceNow_{}"><wsdl:port name="ServiceNowSoap" binding="tns:ServiceNowSoap"><soap:address location="{location}"/></wsdl:port><wsdl:port name="ServiceNowSoap12" binding="tns:ServiceNowSoap12"><soap12:address location="{location}"/></wsdl:port></wsdl:service>"#,
        attr(&xml_name(table))
    ));
    d.push_str("</wsdl:definitions>");
    d
}
