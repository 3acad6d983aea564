//! Engine.IO 3/4 and Socket.IO packets as pure values (STUB: being implemented).
