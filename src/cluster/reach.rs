//! Reaching Redis when a node starts: one question, answered within
//! [`CLUSTER_NODE_TIMEOUT`], and an error that tells the operator what is wrong with the
//! address rather than what the Redis client library saw.

use redis::ErrorKind;

use crate::limits::CLUSTER_NODE_TIMEOUT;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "--cluster {url} is not a Redis URL ({source}): give redis://HOST:PORT, or redis://:PASSWORD@HOST:PORT"
    )]
    BadUrl {
        url: String,
        source: redis::RedisError,
    },
    #[error(
        "Redis at {url} did not answer within {}s: is it running (not paused), and is that its address?",
        CLUSTER_NODE_TIMEOUT.as_secs()
    )]
    Silent { url: String },
    #[error("{url} answered, but not as Redis does: is that the address of a Redis server?")]
    NotRedis { url: String },
    #[error(
        "Redis at {url} wants a password (its requirepass): give it as redis://:PASSWORD@HOST:PORT"
    )]
    NoPassword { url: String },
    #[error("Redis at {url} refused the password the URL gives")]
    BadPassword { url: String },
    #[error("cannot reach Redis at {url}: {source}")]
    Unreachable {
        url: String,
        source: redis::RedisError,
    },
    #[error("every node number of the cluster is taken")]
    Full,
}

impl JoinError {
    /// What `source`, met while reaching the Redis at `url`, says about that address.
    pub fn of(url: &str, source: redis::RedisError) -> JoinError {
        let url = shown(url);
        match source.kind() {
            ErrorKind::InvalidClientConfig => JoinError::BadUrl { url, source },
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType => JoinError::NotRedis { url },
            ErrorKind::AuthenticationFailed => JoinError::BadPassword { url },
            _ if source.code() == Some("NOAUTH") => JoinError::NoPassword { url },
            _ if source.is_timeout() => JoinError::Silent { url },
            _ => JoinError::Unreachable { url, source },
        }
    }
}

/// Connects to the Redis at `url` and asks it `PING`, all within
/// [`CLUSTER_NODE_TIMEOUT`]. Asked once before anything else, so a node given a wrong
/// address (a paused Redis, another service's port) exits at once saying which, where the
/// connection manager would try again and again, silently, for most of a minute.
pub async fn probe(client: &redis::Client, url: &str) -> Result<(), JoinError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CLUSTER_NODE_TIMEOUT))
        .set_response_timeout(Some(CLUSTER_NODE_TIMEOUT));
    let asked = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(CLUSTER_NODE_TIMEOUT, asked).await {
        Err(_) => Err(JoinError::Silent { url: shown(url) }),
        Ok(Err(source)) => Err(JoinError::of(url, source)),
        Ok(Ok(pong)) if pong == "PONG" => Ok(()),
        Ok(Ok(_)) => Err(JoinError::NotRedis { url: shown(url) }),
    }
}

/// [`probe`] for a program that is no node (`charla account add --cluster`), which asks
/// without a runtime: a wrong address is told as a node tells it, not as an I/O error of
/// the first request. Asked on a thread of its own because the client's blocking
/// handshake waits without bound on a Redis that accepts and never answers (paused).
pub fn probe_blocking(client: &redis::Client, url: &str) -> Result<(), JoinError> {
    let (answer, answered) = std::sync::mpsc::channel();
    let client = client.clone();
    std::thread::spawn(move || {
        let asked = || -> redis::RedisResult<String> {
            let mut conn = client.get_connection_with_timeout(CLUSTER_NODE_TIMEOUT)?;
            conn.set_read_timeout(Some(CLUSTER_NODE_TIMEOUT))?;
            conn.set_write_timeout(Some(CLUSTER_NODE_TIMEOUT))?;
            redis::cmd("PING").query(&mut conn)
        };
        let _ = answer.send(asked());
    });
    match answered.recv_timeout(CLUSTER_NODE_TIMEOUT) {
        Err(_) => Err(JoinError::Silent { url: shown(url) }),
        Ok(Ok(pong)) if pong == "PONG" => Ok(()),
        Ok(Ok(_)) => Err(JoinError::NotRedis { url: shown(url) }),
        Ok(Err(source)) => Err(JoinError::of(url, source)),
    }
}

/// `url` as logs and errors show it: its password (`redis://:PASSWORD@HOST:PORT`, as
/// docs/cluster.md advises giving one) replaced by `***`, since logs and a terminal's
/// scrollback are read by more people than may use Redis.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Past `scheme://`, up to the last `@` before the host: what may hold a password.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &url[..start + 3], &url[at..])
            }
            _ => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            shown("redis://:s3cret@10.0.0.5:6379"),
            "redis://:***@10.0.0.5:6379"
        );
        assert_eq!(
            shown("redis://charla:s3cret@10.0.0.5:6379/2"),
            "redis://charla:***@10.0.0.5:6379/2"
        );
        assert_eq!(shown("redis://10.0.0.5:6379"), "redis://10.0.0.5:6379");
        assert_eq!(shown("redis://:s3cret@[::1:6379"), "redis://***@[::1:6379");
    }
}
