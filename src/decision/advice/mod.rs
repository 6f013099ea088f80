//! What AI advice may change, and what is remembered of it: policy, beside the verdict
//! it bounds. The adapter in `advisors::ai` asks the model and checks the answer's
//! schema; these rules decide what a valid answer does ([`rules`]) and keep each
//! instance's consultations, rate limit, streak and outage clock ([`book`]).

pub mod book;
pub mod rules;
