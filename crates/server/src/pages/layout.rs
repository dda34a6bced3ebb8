//! The frame every hosted page shares: the HTML document, its one inline stylesheet (allowed by
//! hash in the Content-Security-Policy, so no other style can run), and the response around it.
//!
//! The stylesheet is written for a phone first (375 px) and widens into two columns from 48 rem;
//! colours meet WCAG AA contrast, and every control has a visible focus ring.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

/// The pages' stylesheet, inlined into every page.
const CSS: &str = r#"
:root{--ink:#1a1a1a;--muted:#4a4a4a;--line:#d4d4d8;--soft:#f4f4f5;--accent:#1d4ed8;--accent-ink:#fff;--accent-soft:#eff6ff;--focus:#b45309}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#fafafa;color:var(--ink);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:0 0 .75rem}
p{margin:.5rem 0}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.card{background:#fff;border:1px solid var(--line);border-radius:.75rem;padding:1rem;margin:0 0 1rem}
.summary .when{font-size:1.15rem;font-weight:600;margin:.25rem 0}
.muted{color:var(--muted)}
.notice{border-radius:.5rem;padding:.75rem 1rem;margin:0 0 1rem;border:1px solid}
.notice.error{background:#fef2f2;border-color:#b91c1c;color:#7f1d1d}
.notice.info{background:#eff6ff;border-color:#1d4ed8;color:#1e3a8a}
.notice.ok{background:#ecfdf5;border-color:#047857;color:#064e3b}
.notice strong{display:block;font-size:1.05rem}
.zone{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
.zone label{display:block;width:100%;font-weight:600}
.zone select{flex:1 1 100%;min-width:0}
select,input[type=text],textarea{font:inherit;color:inherit;background:#fff;border:1px solid #71717a;border-radius:.5rem;padding:.5rem .6rem;min-height:2.75rem}
input[type=text],textarea{width:100%}
button,.button{font:inherit;font-weight:600;border:1px solid var(--accent);border-radius:.5rem;padding:.55rem 1rem;min-height:2.75rem;cursor:pointer;background:var(--accent);color:var(--accent-ink);text-decoration:none;display:inline-block}
button.quiet{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:#b91c1c;border-color:#b91c1c}
.pager{display:flex;justify-content:space-between;align-items:center;gap:.25rem .5rem;margin:0 0 .75rem;flex-wrap:wrap}
.pager .range{font-weight:600;order:-1;flex-basis:100%;text-align:center}
.pager a{padding:.4rem .2rem}
.days{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(4.3rem,1fr));gap:.4rem}
.day{display:flex;flex-direction:column;align-items:center;justify-content:center;min-height:4.2rem;padding:.35rem .2rem;border:1px solid var(--line);border-radius:.5rem;text-align:center;line-height:1.2;text-decoration:none;color:var(--ink);background:#fff}
a.day{border-color:#93c5fd;background:var(--accent-soft)}
a.day:hover{border-color:var(--accent)}
a.day[aria-current]{background:var(--accent);border-color:var(--accent);color:var(--accent-ink)}
.day .dow{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
.day .date{font-weight:700;white-space:nowrap;font-size:.95rem}
.day .count{font-size:.75rem}
.day.off{background:var(--soft);color:#595959}
.day.off .date{font-weight:400}
.picker{display:grid;gap:1rem}
fieldset{border:0;margin:0;padding:0;min-width:0}
legend{font-weight:600;padding:0;margin:0 0 .5rem}
.chips{display:grid;grid-template-columns:repeat(auto-fill,minmax(5.5rem,1fr));gap:.4rem;margin:0 0 1rem}
.chip{position:relative;display:block}
.chip input{position:absolute;opacity:0;inset:0;margin:0}
.chip span{display:flex;flex-direction:column;align-items:center;justify-content:center;min-height:2.75rem;padding:.3rem;border:1px solid var(--accent);border-radius:.5rem;color:var(--accent);background:#fff;font-weight:600;text-align:center;line-height:1.2;cursor:pointer}
.chip input:checked+span{background:var(--accent);color:var(--accent-ink)}
.chip input:focus-visible+span{outline:3px solid var(--focus);outline-offset:2px}
.chip.current span{border-style:dashed;border-color:#71717a;color:var(--muted);cursor:default;background:var(--soft)}
.chip.current small{font-weight:400;font-size:.7rem}
.field{margin:0 0 1rem}
.field label{display:block;font-weight:600;margin:0 0 .25rem}
.alternatives{list-style:none;padding:0;margin:.5rem 0 0;display:flex;flex-wrap:wrap;gap:.4rem}
.alternatives form{margin:0}
details summary{cursor:pointer;font-weight:600;padding:.25rem 0}
details[open] summary{margin-bottom:.5rem}
.links{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;margin:1rem 0}
@media (min-width:48rem){
main{padding:2rem 1.5rem}
h1{font-size:1.85rem}
.top{display:grid;grid-template-columns:3fr 2fr;gap:1rem;align-items:start}
.picker{grid-template-columns:minmax(0,3fr) minmax(0,2fr)}
.days{grid-template-columns:repeat(7,minmax(0,1fr))}
.pager .range{order:0;flex-basis:auto}
}
"#;

/// `sha256-<base64>` of the stylesheet, for the Content-Security-Policy.
pub fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(CSS.as_bytes());
        format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
    })
}

/// A whole page: `title` in the tab and as the heading, `body` under it.
pub fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let document = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (status, Html(document.into_string())).into_response()
}
