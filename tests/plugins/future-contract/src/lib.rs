//! A transformer built against `weft:plugin@1.0.0`, a major version this
//! runtime does not link: loading it must fail with both versions named.

wit_bindgen::generate!({
    inline: r#"
        package weft:plugin@1.0.0;
        interface types {
            record message { id: string, content-type: string, body: list<u8>, headers: list<tuple<string, string>> }
            record output { destination: option<string>, message: message }
            variant plugin-error { reject(string), retry(string), failed(string) }
        }
        interface transform {
            use types.{message, output, plugin-error};
            transform: func(msg: message) -> result<list<output>, plugin-error>;
        }
        world transformer { export transform; }
    "#,
    world: "transformer",
});

use exports::weft::plugin::transform::Guest;
use weft::plugin::types::{Message, Output, PluginError};

struct Future;

impl Guest for Future {
    fn transform(msg: Message) -> Result<Vec<Output>, PluginError> {
        Ok(vec![Output {
            destination: None,
            message: msg,
        }])
    }
}

export!(Future);
