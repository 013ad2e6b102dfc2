//! Scaling out: gateway processes sharing one Redis (a real `redis-server`) in
//! front of one simulator, over real sockets.

use std::time::Duration;

use crate::support::{TestRedis, spawn_replicas, spawn_simulator};

#[tokio::test]
async fn replicas_share_one_fingerprint_key_and_count_each_other() {
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start().await;
    let replicas = spawn_replicas(2, &simulator.handle, &redis, &[]).await;
    for replica in &replicas {
        assert_eq!(
            replica.metric("registrar_gateway_redis_connected").await,
            Some(1.0)
        );
    }
    let mut connection = redis.connection().await;
    let key: Vec<u8> = redis::cmd("GET")
        .arg("registrar-gateway:fingerprint-key")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(key.len(), 32, "one key, made by the first replica");
    let _ = Duration::ZERO;
}
