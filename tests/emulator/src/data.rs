//! The sample records the emulated APIs return. Small, fixed, plausible.

/// Fentu work orders (`GET /v1/work-orders`).
pub const FENTU_WORK_ORDERS: &str = r#"[{"id":"WO-1001","title":"Replace compressor on rooftop unit 3","status":"scheduled","priority":"high","customer_id":"CUST-200","asset_id":"AST-31","scheduled_start":"2022-01-03T09:00:00Z"},{"id":"WO-1002","title":"Quarterly boiler inspection","status":"in_progress","priority":"normal","customer_id":"CUST-201","asset_id":"AST-07","scheduled_start":"2022-01-03T13:30:00Z"},{"id":"WO-1003","title":"Install smart thermostat","status":"completed","priority":"low","customer_id":"CUST-200","asset_id":null,"scheduled_start":"2021-12-30T10:00:00Z"}]"#;

/// Fentu customers (`GET /v1/customers`).
pub const FENTU_CUSTOMERS: &str = r#"[{"id":"CUST-200","name":"Northwind Cold Storage","phone":"+1-555-0100","city":"Minneapolis"},{"id":"CUST-201","name":"Contoso Apartments","phone":"+1-555-0101","city":"St. Paul"}]"#;

/// Fentu assets (`GET /v1/assets`).
pub const FENTU_ASSETS: &str = r#"[{"id":"AST-07","type":"boiler","model":"Viessmann Vitodens 200","customer_id":"CUST-201"},{"id":"AST-31","type":"rooftop_unit","model":"Carrier 48TC","customer_id":"CUST-200"}]"#;

/// Field Nation work orders (`GET /api/rest/v2/workorders`).
pub const FIELD_NATION_WORK_ORDERS: &str = r#"[{"id":48213,"title":"POS terminal swap","status":{"id":3,"name":"Assigned"},"location":{"city":"Denver","state":"CO"},"schedule":{"service_window":{"start":{"utc":"2022-01-04 15:00:00"}}}},{"id":48214,"title":"Network cabling - 12 drops","status":{"id":2,"name":"Published"},"location":{"city":"Austin","state":"TX"},"schedule":{"service_window":{"start":{"utc":"2022-01-05 14:00:00"}}}}]"#;

/// Autotask companies (`GET /ATServicesRest/V1.0/Companies`).
pub const AUTOTASK_COMPANIES: &str = r#"[{"id":0,"companyName":"Demo MSP (owner)","companyType":1,"isActive":true,"phone":"555-0199"},{"id":174,"companyName":"Fabrikam Dental Group","companyType":1,"isActive":true,"phone":"555-0142"}]"#;

/// Autotask tickets (`GET /ATServicesRest/V1.0/Tickets`).
pub const AUTOTASK_TICKETS: &str = r#"[{"id":9021,"ticketNumber":"T20220103.0004","title":"Printer offline at front desk","companyID":174,"status":1,"priority":2}]"#;

/// Patchworks flows (`GET /core/v1/flows`).
pub const PATCHWORKS_FLOWS: &str = r#"[{"id":1,"name":"Shopify orders to NetSuite","is_enabled":true,"created_at":"2021-11-02T10:15:00.000000Z"},{"id":2,"name":"Stock levels from WMS","is_enabled":false,"created_at":"2021-12-14T08:00:00.000000Z"}]"#;

/// The records of a JSON array with `"id"` members whose id, as text, is `id`.
pub fn find_by_id(array: &str, id: &str) -> Option<serde_json::Value> {
    let items: Vec<serde_json::Value> = serde_json::from_str(array).ok()?;
    items.into_iter().find(|item| match item.get("id") {
        Some(serde_json::Value::String(s)) => s == id,
        Some(serde_json::Value::Number(n)) => n.to_string() == id,
        _ => false,
    })
}

/// How many records a JSON array has.
pub fn count(array: &str) -> usize {
    serde_json::from_str::<Vec<serde_json::Value>>(array).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_json_arrays() {
        for a in [
            FENTU_WORK_ORDERS,
            FENTU_CUSTOMERS,
            FENTU_ASSETS,
            FIELD_NATION_WORK_ORDERS,
            AUTOTASK_COMPANIES,
            AUTOTASK_TICKETS,
            PATCHWORKS_FLOWS,
        ] {
            assert!(count(a) > 0);
        }
        assert!(find_by_id(FENTU_WORK_ORDERS, "WO-1002").is_some());
        assert!(find_by_id(AUTOTASK_COMPANIES, "174").is_some());
        assert!(find_by_id(AUTOTASK_COMPANIES, "9").is_none());
    }
}
