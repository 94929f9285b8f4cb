//! The subcommands, one module each (nouns, then verbs: `tagcast tag check`).

mod bench;
mod broker;
mod conformance;
mod demo;
mod deployer;
mod explain;
mod hook_config;
mod interop;
mod reference;
mod schema;
mod tag;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tag grammar, pub/sub contract and reference tools for delivering
/// container images to GA4GH service deployments.
#[derive(Debug, Parser)]
#[command(name = "tagcast", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, check, sort and pick image tags of the grammar
    /// `<api-version>-<stage>-<timestamp>`.
    #[command(subcommand)]
    Tag(tag::TagCommand),
    /// Parse OCI image references.
    #[command(subcommand)]
    Reference(reference::ReferenceCommand),
    /// Export the JSON Schemas and OpenAPI document of the contract, and
    /// their readable docs.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Run the reference broker: a GA4GH Service Registry with subscriptions
    /// that turns registry push webhooks into signed callbacks.
    Broker(Box<broker::BrokerArgs>),
    /// Print the configuration with which Flux, Argo CD Image Updater or
    /// Keel follows a tagcast channel.
    Interop(interop::InteropArgs),
    /// Certify CI outputs, registries, brokers and CD endpoints against the
    /// contract.
    Conformance(Box<conformance::ConformanceArgs>),
    /// Run the whole chain on this machine: a broker, a deployer, a played
    /// container registry and a git repository; show what happens and why.
    Demo(demo::DemoArgs),
    /// Run the reference CD endpoint that verifies signed callbacks and
    /// upgrades a workload; hold, release and show its state.
    Deployer(Box<deployer::DeployerCommand>),
    /// Measure the broker (or the deployer): ingest, latency, fan-out,
    /// scaling with subscriptions, memory; `--help` states each method.
    Bench(Box<bench::BenchArgs>),
}

/// Runs the parsed command; the exit code says whether it found a problem.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tag(cmd) => tag::run(cmd),
        Command::Reference(cmd) => reference::run(cmd),
        Command::Schema(cmd) => schema::run(cmd),
        Command::Broker(args) => broker::run(*args),
        Command::Interop(args) => interop::run(args),
        Command::Conformance(args) => conformance::run(*args),
        Command::Deployer(cmd) => deployer::run(*cmd),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(*args),
    }
}
