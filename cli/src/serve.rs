//! `lamina serve`: the model behind an OpenAI-compatible HTTP API (see `lamina-serve`).

use crate::llm::{load_any, with_lora, CliResult, ModelArgs};
use clap::Args;
use lamina_model::arch;
use lamina_serve::{Engine, Network, SchedulerOptions, ServeOptions};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (loopback by default: pass 0.0.0.0 to serve other machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on every /v1 route.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Requests generating at once (slots, each with a KV cache of --ctx tokens).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Requests that may wait for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Prompt tokens prefilled per step at most (over all new requests), so that a long
    /// prompt does not stall the others' tokens.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub chunk: u32,
    /// The model's name in the API (default: the file name).
    #[arg(long)]
    pub alias: Option<String>,
    /// Seconds running requests get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10.0)]
    pub shutdown_timeout: f64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub body_limit: usize,
}

pub fn run(args: ServeArgs) -> CliResult {
    if !(args.shutdown_timeout >= 0.0 && args.shutdown_timeout <= 3600.0) {
        return Err("--shutdown-timeout must be between 0 and 3600 seconds".into());
    }
    let opts = ServeOptions {
        host: args.host,
        port: args.port,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        scheduler: SchedulerOptions {
            parallel: args.parallel as usize,
            ctx: args.model.ctx,
            chunk: args.chunk as usize,
        },
        queue: args.queue,
        body_limit: args.body_limit,
        shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout),
    };
    let model_args = args.model;
    let alias = args.alias;
    lamina_serve::serve(opts, move || {
        let m = load_any(&model_args).map_err(|e| e.to_string())?;
        let name = alias.unwrap_or_else(|| {
            m.path.file_stem().map_or_else(|| m.path.display().to_string(), |s| s.to_string_lossy().into_owned())
        });
        eprintln!("lamina serve: model {} loaded in {:.2} s", m.path.display(), m.load_secs);
        let model = match m.model {
            arch::Model::Encoder(bert) if model_args.lora.is_none() => Network::Encoder(bert),
            // A decoder with its adapter (an encoder with one: the error that says so).
            other => Network::Decoder(with_lora(other, &model_args).map_err(|e| e.to_string())?),
        };
        Ok(Engine { model, tokenizer: m.tokenizer, template: m.template, name })
    })?;
    Ok(())
}
