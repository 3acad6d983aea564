//! Runtime WebSocket for context updates (docs/protocol.md §2), shared by the load
//! client and the emulator: `frame` (4-byte big-endian length + payload,
//! heartbeats), `message` (the JSON/MessagePack message shapes) and `codec`
//! (MessagePack or JSON behind one trait). The client connection, OAuth,
//! validation and normalization build on these.

pub mod codec;
pub mod connection;
pub mod frame;
pub mod limits;
pub mod message;
pub mod normalize;
pub mod oauth;

pub use codec::{Codec, CodecError, WireCodec};
pub use connection::{
    GetOutcome, GetResult, ReconnectPolicy, RuntimeConnection, RuntimeCounters, RuntimeError,
    RuntimeOptions, UpdateOutcome, UpdateRequest, UpdateResult,
};
pub use frame::{FrameError, Payload};
pub use limits::{LimitError, Limits};
pub use message::{ClientMessage, Context, RejectCode, ScopeVars, ServerMessage, SCOPES};
pub use normalize::{deserialize_normalized, normalize_json};
pub use oauth::{AccessToken, OAuthConfig, OAuthError, TokenProvider, TokenStats};
