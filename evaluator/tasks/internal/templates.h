// HELMET's prompt templates, word for word (data.py, commit 4526dfb), per loader.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_TEMPLATES_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_TEMPLATES_H_

#include "evaluator/tasks/task_data.h"
#include "evaluator/tasks/task_registry.h"

namespace prolong::evaluator::tasks::internal {

// user, system, and prompt = user + separator + system ("\n"; "\n\n" for InfiniteBench and
// Multi-LexSum, as HELMET joins them).
PromptTemplates TemplatesFor(const TaskConfig& config);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_TEMPLATES_H_
