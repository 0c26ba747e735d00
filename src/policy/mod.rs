//! Adobe Flash socket policies: recognising the request ([`sniff`]), writing and checking the
//! XML ([`xml`]), answering it on a connection ([`serve`]), and the master policy listener
//! ([`listener`]); and the URL policy served over HTTP as `/crossdomain.xml` ([`url`]).

pub mod listener;
pub mod serve;
pub mod sniff;
pub mod url;
pub mod xml;

use std::net::SocketAddr;

use bytes::Bytes;

use crate::config::Config;
use crate::origin::AllowList;
use xml::Grant;

/// The policies the gateway serves: two socket policy replies, each ending in NUL, and the
/// URL policy.
#[derive(Debug, Clone)]
pub struct Policies {
    /// For the master policy listener (port 843): includes `<site-control>`.
    pub master: Bytes,
    /// For requests sniffed on the main port.
    pub inline: Bytes,
    /// `/crossdomain.xml`: the same domains, for HTTP.
    pub url: Bytes,
}

/// What the policy grants Flash: the policy file's grants, or one per allowed origin's
/// host (`*` when any may connect) to the main port.
pub fn grants(config: &Config, allow: &AllowList, main: SocketAddr) -> Vec<Grant> {
    match &config.policy_file {
        Some(file) => file.grants.clone(),
        None => allow
            .policy_domains(main)
            .into_iter()
            .map(|domain| Grant {
                domain,
                to_ports: main.port().to_string(),
            })
            .collect(),
    }
}

impl Policies {
    /// Builds the replies from the allow-list and the bound ports, or takes the hand-written
    /// file. Also returns warnings about grants Flash Player will refuse.
    pub fn new(
        config: &Config,
        allow: &AllowList,
        main: SocketAddr,
        policy: Option<SocketAddr>,
    ) -> (Policies, Vec<String>) {
        let grants = grants(config, allow, main);
        let (master, inline) = match &config.policy_file {
            Some(file) => (file.reply.clone(), file.reply.clone()),
            None => (xml::build(&grants, true), xml::build(&grants, false)),
        };
        let url = url::build(&grants);
        let mut warnings = Vec::new();
        let served_from = std::iter::once(main.port()).chain(policy.map(|p| p.port()));
        for port in served_from.filter(|&p| p >= 1024) {
            for grant in grants
                .iter()
                .filter(|g| xml::lowest_port(&g.to_ports) < 1024)
            {
                warnings.push(format!(
                    "the policy served on port {port} grants to-ports=\"{}\" to {}, but Flash Player ignores grants below \
                     1024 in a policy served from port 1024 or above; serve it from port 843 (--policy-listen) instead",
                    grant.to_ports, grant.domain
                ));
            }
        }
        let policies = Policies {
            master,
            inline,
            url,
        };
        (policies, warnings)
    }
}
