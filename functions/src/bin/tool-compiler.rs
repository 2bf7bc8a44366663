fn main() -> Result<(), lambda_runtime::Error> {
    bestchat_functions::event::tools_main(|runtime, payload| {
        Box::pin(bestchat_app::tools::compiler::serve(runtime, payload))
    })
}
