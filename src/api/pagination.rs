//! List conventions: `page`, `page_size`, `sort` in; a JSON array with `X-Total-Count` and
//! `Link` headers out.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::{ApiError, ErrorCode};
use crate::store::{ListParams, SortField};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// Paging and sorting of a list. Values are read as text so that a bad one gets our own error.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
    /// `id` or `created_at`, with a `-` prefix for descending order (default `-id`).
    #[param(value_type = Option<String>, example = "-created_at")]
    pub sort: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: u64,
    pub page_size: u64,
    pub sort: SortField,
    pub descending: bool,
}

fn bad(detail: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidQueryParameter, detail)
}

impl PageQuery {
    pub fn validate(&self) -> Result<Page, ApiError> {
        let number = |name: &str, raw: &Option<String>, default: u64, max: u64| match raw {
            None => Ok(default),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                _ if max == u64::MAX => Err(bad(format!(
                    "`{name}` must be a whole number of at least 1, not {text:?}"
                ))),
                _ => Err(bad(format!(
                    "`{name}` must be a whole number from 1 to {max}, not {text:?}"
                ))),
            },
        };
        let page = number("page", &self.page, 1, 1_000_000_000)?;
        let page_size = number(
            "page_size",
            &self.page_size,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )?;
        let (sort, descending) = match self.sort.as_deref().map(str::trim) {
            None | Some("-id") => (SortField::Id, true),
            Some("id") => (SortField::Id, false),
            Some("created_at") | Some("createdAt") => (SortField::CreatedAt, false),
            Some("-created_at") | Some("-createdAt") => (SortField::CreatedAt, true),
            Some(other) => {
                return Err(bad(format!(
                    "`sort` must be id, created_at, -id or -created_at, not {other:?}"
                )))
            }
        };
        Ok(Page {
            page,
            page_size,
            sort,
            descending,
        })
    }
}

impl Page {
    pub fn params(&self) -> ListParams {
        ListParams {
            offset: (self.page - 1).saturating_mul(self.page_size),
            limit: self.page_size,
            sort: self.sort,
            descending: self.descending,
        }
    }

    fn sort_text(&self) -> String {
        let field = match self.sort {
            SortField::Id => "id",
            SortField::CreatedAt => "created_at",
        };
        format!("{}{field}", if self.descending { "-" } else { "" })
    }

    /// The list response: the items as an array, `X-Total-Count` and `Link` headers.
    pub fn respond<T: Serialize>(
        &self,
        req: &HttpRequest,
        items: Vec<T>,
        total: u64,
    ) -> HttpResponse {
        let last = total.div_ceil(self.page_size).max(1);
        let info = req.connection_info();
        // Other query parameters (filters) are kept in the links.
        let kept: Vec<(String, String)> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k != "page" && k != "page_size" && k != "sort")
                .collect();
        let link = |page: u64, rel: &str| {
            let mut pairs = kept.clone();
            pairs.push(("page".into(), page.to_string()));
            pairs.push(("page_size".into(), self.page_size.to_string()));
            pairs.push(("sort".into(), self.sort_text()));
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            format!(
                "<{}://{}{}?{}>; rel=\"{rel}\"",
                info.scheme(),
                info.host(),
                req.path(),
                query
            )
        };
        let mut links = vec![link(1, "first")];
        if self.page > 1 {
            links.push(link((self.page - 1).min(last), "prev"));
        }
        if self.page < last {
            links.push(link(self.page + 1, "next"));
        }
        links.push(link(last, "last"));
        HttpResponse::Ok()
            .insert_header(("X-Total-Count", total.to_string()))
            .insert_header(("Link", links.join(", ")))
            .json(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(page: Option<&str>, size: Option<&str>, sort: Option<&str>) -> PageQuery {
        PageQuery {
            page: page.map(String::from),
            page_size: size.map(String::from),
            sort: sort.map(String::from),
        }
    }

    #[test]
    fn defaults_are_page_one_of_twenty_newest_first() {
        let page = query(None, None, None).validate().unwrap();
        assert_eq!((page.page, page.page_size, page.descending), (1, 20, true));
        assert_eq!(page.sort, SortField::Id);
    }

    #[test]
    fn bad_values_are_rejected() {
        for (p, s, o) in [
            (Some("0"), None, None),
            (Some("x"), None, None),
            (Some("-1"), None, None),
            (None, Some("101"), None),
            (None, Some("0"), None),
            (None, None, Some("name")),
        ] {
            assert!(query(p, s, o).validate().is_err(), "{p:?} {s:?} {o:?}");
        }
    }

    #[test]
    fn the_offset_follows_the_page() {
        let page = query(Some("3"), Some("10"), Some("created_at"))
            .validate()
            .unwrap();
        let params = page.params();
        assert_eq!((params.offset, params.limit), (20, 10));
        assert!(!params.descending);
    }
}
