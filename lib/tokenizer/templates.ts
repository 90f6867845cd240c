// Chat templates written into the tokenizer_config.json of a trained tokenizer. They are data, copied verbatim
// from MiniMind's tokenizer_config.json files (spec: minimind-reference.md §2.2 and §2.3).

/** MiniMind v1 (6861d1a): system text raw, `<s>user\n…</s>\n<s>assistant\n`, assistant turns end in `</s>\n`. */
export const V1_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}" +
  '{% if system_message is defined %}{{ system_message }}{% endif %}' +
  "{% for message in messages %}{% set content = message['content'] %}" +
  "{% if message['role'] == 'user' %}{{ '<s>user\\n' + content + '</s>\\n<s>assistant\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ content + '</s>' + '\\n' }}{% endif %}{% endfor %}";

/** MiniMind2 (274483c, 2025-04-26): ChatML with the default system prompt "You are a helpful assistant". */
export const CHATML_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}" +
  "{{ '<|im_start|>system\\n' + system_message + '<|im_end|>\\n' }}" +
  "{% else %}{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}" +
  "{% for message in messages %}{% set content = message['content'] %}" +
  "{% if message['role'] == 'user' %}{{ '<|im_start|>user\\n' + content + '<|im_end|>\\n<|im_start|>assistant\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ content + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}";
