// The JSON a model answers with for one message, as a JSON Schema: the engine decodes within it (or
// an OpenAI-compatible server does, through response_format) and ajv checks every answer, whoever
// produced it, before anything is stored.
import { Ajv, type ValidateFunction } from 'ajv';

export interface ModelAnswer {
  category: string;
  priority: number;
  summary: string;
  actions: { task: string; due: string | null }[];
  links: string[];
}

export const SUMMARY_MAX = 200;

export function triageSchema(categories: readonly string[]): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      category: { enum: [...categories] },
      priority: { type: 'integer', minimum: 1, maximum: 5 },
      summary: { type: 'string', minLength: 1, maxLength: SUMMARY_MAX },
      actions: {
        type: 'array',
        maxItems: 3,
        items: {
          type: 'object',
          properties: { task: { type: 'string', minLength: 1, maxLength: 120 }, due: { type: ['string', 'null'], format: 'date' } },
          required: ['task', 'due'],
          additionalProperties: false,
        },
      },
      links: { type: 'array', maxItems: 3, items: { type: 'string', minLength: 4, maxLength: 300 } },
    },
    required: ['category', 'priority', 'summary', 'actions', 'links'],
    additionalProperties: false,
  };
}

const ajv = new Ajv({ allErrors: false, strict: true });
ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);

/** A validator for a category set; the first error, in words, when an answer fails. */
export function answerValidator(categories: readonly string[]): (v: unknown) => string | null {
  const check: ValidateFunction = ajv.compile(triageSchema(categories));
  return (v) => {
    if (check(v)) return null;
    const e = check.errors![0];
    return `${e.instancePath || '(answer)'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as string[]).join(', ')})` : ''}`;
  };
}
