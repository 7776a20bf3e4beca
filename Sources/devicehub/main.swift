import Foundation

let arguments = EnvironmentArguments.merge(DevicehubCommand.self, arguments: Array(CommandLine.arguments.dropFirst()),
                                           environment: ProcessInfo.processInfo.environment)
DevicehubCommand.main(arguments)
