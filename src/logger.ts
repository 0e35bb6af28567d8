import { pino, type Logger, type DestinationStream } from 'pino'

/**
 * Silo's logger. Request headers that carry secrets are redacted, and so is anything logged
 * under a key that names one, wherever it sits in the first two levels of an object.
 */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie',
        'password', '*.password', 'token', '*.token', 'secretKey', '*.secretKey', 'connectionString', '*.connectionString'
      ],
      censor: '[redacted]'
    }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
