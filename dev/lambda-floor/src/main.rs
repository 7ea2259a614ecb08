//! The least a `lambda_http` function can be: the same runtime and features as the two
//! functions, a fixed answer and nothing else. `scripts/bench-cold` measures its start-up
//! as the floor the functions' start-up is compared with. Never deployed.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from("{\"hello\":\"world\"}"))
            .map_err(Error::from)
    }))
    .await
}
