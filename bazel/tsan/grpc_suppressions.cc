// What ThreadSanitizer is told to leave alone in gRPC. Debian's libgrpc is built without TSan,
// and its callback API hands a call between threads inside it: the scheduler's thread that
// finishes a SubmitRun call (ServerCallbackUnaryImpl::Finish: the response serialized, the
// interceptors run, the ops started), libgrpc queues the completion, and one of gRPC's threads
// runs it (CallbackWithSuccessTag::StaticRun) and ends the call (CallOnDone: the messages and
// the interceptors destroyed). These are gRPC's header code, compiled into our binaries, so
// TSan sees both sides of the hand-off and not the queue in libgrpc that orders them.
// `race_top` matches a race only where the access itself is in gRPC's code; `race` matches any
// race with one side inside Finish or CallOnDone. What runs there of ours is the response's
// serialization, the RPC metrics interceptor and the messages' destructors; the handlers and
// everything else of ours stay checked.
extern "C" const char* __tsan_default_suppressions() {
  return "race_top:grpc::internal::\n"
         "race_top:grpc::ServerUnaryReactor::\n"
         "race:ServerCallbackUnaryImpl::Finish\n"
         "race:ServerCallbackUnaryImpl::CallOnDone\n";
}
