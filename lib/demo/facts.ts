// The closed set of facts behind the embedded demo corpus (about 120), each in English and Chinese: capitals,
// animals (food, sounds, legs), colours, a small family with pets, small additions and subtractions, and units of
// time. Every fact carries
//   statements  sentences for the pretraining text
//   questions   the phrasings used in SFT, DPO and the pretraining text's question-answer pairs
//   heldout     a phrasing never used with this fact in training, for evaluation (see splitPhrasings)
//   answer      the short templated answer (the SFT reply)
//   wrong       a plausible wrong answer (a DPO rejected reply)
//   keywords    what a correct reply must contain
// The facts are fixed (no seed): the seed of writeDemoData only changes which sentences are sampled.
export type Language = 'en' | 'zh';
export type Topic = 'capital' | 'animal' | 'color' | 'family' | 'arithmetic' | 'time';

export interface FactText {
  statements: string[];
  questions: string[];
  heldout: string[];
  answer: string;
  wrong: string;
  keywords: string[];
}

export interface Fact {
  id: string;
  topic: Topic;
  en: FactText;
  zh: FactText;
}

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);

// ---- question templates shared by the facts of a topic -----------------------------------------------------------

/**
 * Splits a topic's question phrasings (one function of the fact's subject each) between training and evaluation:
 * fact i of the topic holds out phrasing i mod K and trains on the others. Every phrasing is therefore trained with
 * most facts of its topic, so the model can learn what it asks, yet each held-out question pairs a phrasing and a
 * fact that never occur together in training.
 */
function splitPhrasings(phrasings: string[], i: number): { questions: string[]; heldout: string[] } {
  const k = i % phrasings.length;
  return { questions: phrasings.filter((_, j) => j !== k), heldout: [phrasings[k]] };
}

// ---- capitals -----------------------------------------------------------------------------------------------------

/** [country, capital, Chinese country, Chinese capital] */
const CAPITALS: [string, string, string, string][] = [
  ['France', 'Paris', '法国', '巴黎'], ['Japan', 'Tokyo', '日本', '东京'], ['China', 'Beijing', '中国', '北京'],
  ['Italy', 'Rome', '意大利', '罗马'], ['Germany', 'Berlin', '德国', '柏林'], ['Spain', 'Madrid', '西班牙', '马德里'],
  ['Russia', 'Moscow', '俄罗斯', '莫斯科'], ['Egypt', 'Cairo', '埃及', '开罗'], ['England', 'London', '英国', '伦敦'],
  ['Korea', 'Seoul', '韩国', '首尔'], ['Canada', 'Ottawa', '加拿大', '渥太华'], ['Greece', 'Athens', '希腊', '雅典'],
  ['Thailand', 'Bangkok', '泰国', '曼谷'], ['Kenya', 'Nairobi', '肯尼亚', '内罗毕'], ['Peru', 'Lima', '秘鲁', '利马'],
  ['Norway', 'Oslo', '挪威', '奥斯陆'],
];

function capitalFacts(): Fact[] {
  return CAPITALS.map(([C, K, Cz, Kz], i) => {
    const [, W, , Wz] = CAPITALS[(i + 1) % CAPITALS.length];
    return {
      id: `capital-${C.toLowerCase()}`,
      topic: 'capital',
      en: {
        statements: [`The capital of ${C} is ${K}.`, `${K} is the capital city of ${C}.`,
          `${C} is a country. Its capital is ${K}.`],
        ...splitPhrasings([`What is the capital of ${C}?`, `Tell me the capital of ${C}.`,
          `Which city is the capital of ${C}?`, `Do you know what the capital of ${C} is?`], i),
        answer: `The capital of ${C} is ${K}.`,
        wrong: `The capital of ${C} is ${W}.`,
        keywords: [K],
      },
      zh: {
        statements: [`${Cz}的首都是${Kz}。`, `${Kz}是${Cz}的首都。`, `${Cz}是一个国家，它的首都是${Kz}。`],
        ...splitPhrasings([`${Cz}的首都是哪里？`, `${Cz}的首都是什么？`, `哪座城市是${Cz}的首都？`, `你知道${Cz}的首都吗？`],
          i + 1),
        answer: `${Cz}的首都是${Kz}。`,
        wrong: `${Cz}的首都是${Wz}。`,
        keywords: [Kz],
      },
    };
  });
}

// ---- animals ----------------------------------------------------------------------------------------------------

const ANIMAL_FOODS: [string, string, string, string][] = [
  ['panda', '大熊猫', 'bamboo', '竹子'], ['rabbit', '兔子', 'carrots', '胡萝卜'], ['cat', '猫', 'fish', '鱼'],
  ['dog', '狗', 'bones', '骨头'], ['monkey', '猴子', 'bananas', '香蕉'], ['cow', '牛', 'grass', '草'],
  ['bear', '熊', 'honey', '蜂蜜'], ['squirrel', '松鼠', 'nuts', '坚果'], ['koala', '考拉', 'eucalyptus leaves', '桉树叶'],
  ['chicken', '鸡', 'corn', '玉米'],
];
const ANIMAL_SOUNDS: [string, string, string, string][] = [
  ['dog', '狗', 'woof', '汪汪'], ['cat', '猫', 'meow', '喵喵'], ['cow', '牛', 'moo', '哞哞'],
  ['duck', '鸭子', 'quack', '嘎嘎'], ['sheep', '羊', 'baa', '咩咩'], ['frog', '青蛙', 'ribbit', '呱呱'],
];
const ANIMAL_LEGS: [string, string, number][] = [
  ['spider', '蜘蛛', 8], ['ant', '蚂蚁', 6], ['horse', '马', 4], ['chicken', '鸡', 2], ['cat', '猫', 4], ['bee', '蜜蜂', 6],
];

export const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

function animalFacts(): Fact[] {
  const foods = ANIMAL_FOODS.map(([a, az, f, fz], i): Fact => {
    const [, , w, wz] = ANIMAL_FOODS[(i + 3) % ANIMAL_FOODS.length];
    return {
      id: `food-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} eats ${f}.`, `The favorite food of ${article(a)} is ${f}.`,
          `${capitalize(f)} is what ${article(a)} likes to eat.`],
        ...splitPhrasings([`What does ${article(a)} eat?`, `What food does ${article(a)} like?`,
          `What is the favorite food of ${article(a)}?`, `Tell me what ${article(a)} likes to eat.`], i),
        answer: `${capitalize(article(a))} eats ${f}.`, wrong: `${capitalize(article(a))} eats ${w}.`, keywords: [f],
      },
      zh: {
        statements: [`${az}吃${fz}。`, `${az}最喜欢吃${fz}。`, `${fz}是${az}爱吃的食物。`],
        ...splitPhrasings([`${az}吃什么？`, `${az}喜欢吃什么？`,
          `${az}最爱吃的食物是什么？`, `你知道${az}平时吃什么吗？`], i + 1),
        answer: `${az}吃${fz}。`, wrong: `${az}吃${wz}。`, keywords: [fz],
      },
    };
  });
  const sounds = ANIMAL_SOUNDS.map(([a, az, s, sz], i): Fact => {
    const [, , w, wz] = ANIMAL_SOUNDS[(i + 1) % ANIMAL_SOUNDS.length];
    return {
      id: `sound-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} says ${s}.`, `When ${article(a)} talks, it says ${s}.`],
        ...splitPhrasings([`What does ${article(a)} say?`, `What sound does ${article(a)} make?`,
          `How does ${article(a)} sound?`, `Which sound comes from ${article(a)}?`], i),
        answer: `${capitalize(article(a))} says ${s}.`, wrong: `${capitalize(article(a))} says ${w}.`, keywords: [s],
      },
      zh: {
        statements: [`${az}会${sz}叫。`, `${az}的叫声是${sz}。`],
        ...splitPhrasings([`${az}怎么叫？`, `${az}的叫声是什么？`,
          `${az}会发出什么声音？`, `你知道${az}是怎么叫的吗？`], i + 1),
        answer: `${az}会${sz}叫。`, wrong: `${az}会${wz}叫。`, keywords: [sz],
      },
    };
  });
  const legs = ANIMAL_LEGS.map(([a, az, n], i): Fact => {
    const w = ANIMAL_LEGS[(i + 1) % ANIMAL_LEGS.length][2] === n ? n + 2 : ANIMAL_LEGS[(i + 1) % ANIMAL_LEGS.length][2];
    return {
      id: `legs-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} has ${n} legs.`, `Count the legs of ${article(a)}: there are ${n}.`],
        ...splitPhrasings([`How many legs does ${article(a)} have?`, `How many legs has ${article(a)} got?`,
          `What is the number of legs of ${article(a)}?`, `Count the legs of ${article(a)} for me.`], i),
        answer: `${capitalize(article(a))} has ${n} legs.`, wrong: `${capitalize(article(a))} has ${w} legs.`,
        keywords: [String(n)],
      },
      zh: {
        statements: [`${az}有${n}条腿。`, `数一数${az}的腿，一共有${n}条。`],
        ...splitPhrasings([`${az}有几条腿？`, `${az}有多少条腿？`,
          `${az}的腿一共有几条？`, `请数一数${az}有几条腿。`], i + 1),
        answer: `${az}有${n}条腿。`, wrong: `${az}有${w}条腿。`, keywords: [String(n)],
      },
    };
  });
  return [...foods, ...sounds, ...legs];
}

// ---- colours ------------------------------------------------------------------------------------------------------

/** [English subject, Chinese subject, colour, Chinese colour] */
const COLORS: [string, string, string, string][] = [
  ['the sky', '天空', 'blue', '蓝'], ['grass', '草', 'green', '绿'], ['snow', '雪', 'white', '白'],
  ['a banana', '香蕉', 'yellow', '黄'], ['an apple', '苹果', 'red', '红'], ['coal', '煤', 'black', '黑'],
  ['a carrot', '胡萝卜', 'orange', '橙'], ['a strawberry', '草莓', 'red', '红'], ['a lemon', '柠檬', 'yellow', '黄'],
  ['milk', '牛奶', 'white', '白'], ['a tomato', '西红柿', 'red', '红'], ['a grape', '葡萄', 'purple', '紫'],
  ['a leaf', '树叶', 'green', '绿'], ['chocolate', '巧克力', 'brown', '棕'], ['a cloud', '云', 'white', '白'],
  ['the sea', '大海', 'blue', '蓝'], ['a pumpkin', '南瓜', 'orange', '橙'], ['an eggplant', '茄子', 'purple', '紫'],
  ['a crow', '乌鸦', 'black', '黑'], ['a lime', '青柠', 'green', '绿'],
];

function colorFacts(): Fact[] {
  return COLORS.map(([s, sz, c, cz], i): Fact => {
    let j = (i + 1) % COLORS.length;
    while (COLORS[j][2] === c) j = (j + 1) % COLORS.length;
    const [, , w, wz] = COLORS[j];
    return {
      id: `color-${s.replace(/^(the|a|an) /, '')}`, topic: 'color',
      en: {
        statements: [`${capitalize(s)} is ${c}.`, `The color of ${s} is ${c}.`, `Look at ${s}: it is ${c}.`],
        ...splitPhrasings([`What color is ${s}?`, `What is the color of ${s}?`,
          `Which color does ${s} have?`, `Tell me the color of ${s}.`], i),
        answer: `${capitalize(s)} is ${c}.`, wrong: `${capitalize(s)} is ${w}.`, keywords: [c],
      },
      zh: {
        statements: [`${sz}是${cz}色的。`, `${sz}的颜色是${cz}色。`, `看，${sz}是${cz}色的。`],
        ...splitPhrasings([`${sz}是什么颜色的？`, `${sz}的颜色是什么？`,
          `${sz}是哪种颜色？`, `你知道${sz}是什么颜色吗？`], i + 1),
        answer: `${sz}是${cz}色的。`, wrong: `${sz}是${wz}色的。`, keywords: [`${cz}色`],
      },
    };
  });
}

// ---- a family with pets (the characters of the stories) -------------------------------------------------------

export interface Person {
  en: string;
  zh: string;
}
export const PEOPLE = {
  jack: { en: 'Jack', zh: '杰克' }, rose: { en: 'Rose', zh: '罗丝' },
  sam: { en: 'Sam', zh: '山姆' }, emma: { en: 'Emma', zh: '艾玛' },
  lucy: { en: 'Lucy', zh: '露西' }, leo: { en: 'Leo', zh: '利奥' },
  tom: { en: 'Tom', zh: '汤姆' }, lily: { en: 'Lily', zh: '莉莉' },
  ben: { en: 'Ben', zh: '本' }, mia: { en: 'Mia', zh: '米娅' },
} satisfies Record<string, Person>;

/** The four children of the stories: Jack and Rose have Sam and Lucy; Sam and Emma have Tom and (younger) Lily;
 * Lucy and Leo have Mia and (younger) Ben. Chinese distinguishes paternal and maternal grandparents and older and
 * younger siblings. */
export interface Child {
  kid: Person;
  sibling: Person;
  siblingWord: [string, string];
  mother: Person;
  father: Person;
  grandparentWords: [string, string];
  pet: { kind: [string, string]; name: Person };
}
export const CHILDREN: Child[] = [
  { kid: PEOPLE.tom, sibling: PEOPLE.lily, siblingWord: ['sister', '妹妹'], mother: PEOPLE.emma, father: PEOPLE.sam,
    grandparentWords: ['奶奶', '爷爷'], pet: { kind: ['dog', '狗'], name: { en: 'Max', zh: '麦克斯' } } },
  { kid: PEOPLE.lily, sibling: PEOPLE.tom, siblingWord: ['brother', '哥哥'], mother: PEOPLE.emma, father: PEOPLE.sam,
    grandparentWords: ['奶奶', '爷爷'], pet: { kind: ['cat', '猫'], name: { en: 'Luna', zh: '露娜' } } },
  { kid: PEOPLE.mia, sibling: PEOPLE.ben, siblingWord: ['brother', '弟弟'], mother: PEOPLE.lucy, father: PEOPLE.leo,
    grandparentWords: ['外婆', '外公'], pet: { kind: ['bird', '鸟'], name: { en: 'Kiki', zh: '琪琪' } } },
  { kid: PEOPLE.ben, sibling: PEOPLE.mia, siblingWord: ['sister', '姐姐'], mother: PEOPLE.lucy, father: PEOPLE.leo,
    grandparentWords: ['外婆', '外公'], pet: { kind: ['rabbit', '兔子'], name: { en: 'Coco', zh: '可可' } } },
];

/** [person, relation (en, zh), relative] */
const RELATIONS: [Person, string, string, Person][] = [
  ...CHILDREN.flatMap((c): [Person, string, string, Person][] => [
    [c.kid, 'mother', '妈妈', c.mother], [c.kid, 'father', '爸爸', c.father],
    [c.kid, 'grandmother', c.grandparentWords[0], PEOPLE.rose], [c.kid, 'grandfather', c.grandparentWords[1], PEOPLE.jack],
    [c.kid, c.siblingWord[0], c.siblingWord[1], c.sibling],
  ]),
];

function familyFacts(): Fact[] {
  const relations = RELATIONS.map(([who, rel, relZh, whom], i): Fact => {
    let j = (i + 7) % RELATIONS.length;
    while (RELATIONS[j][3] === whom) j = (j + 1) % RELATIONS.length;
    const w = RELATIONS[j][3];
    return {
      id: `family-${who.en.toLowerCase()}-${rel}`, topic: 'family',
      en: {
        statements: [`${who.en}'s ${rel} is ${whom.en}.`, `${whom.en} is the ${rel} of ${who.en}.`],
        ...splitPhrasings([`Who is ${who.en}'s ${rel}?`, `What is the name of ${who.en}'s ${rel}?`,
          `Can you tell me who ${who.en}'s ${rel} is?`, `Who is the ${rel} of ${who.en}?`], i),
        answer: `${who.en}'s ${rel} is ${whom.en}.`, wrong: `${who.en}'s ${rel} is ${w.en}.`, keywords: [whom.en],
      },
      zh: {
        statements: [`${who.zh}的${relZh}是${whom.zh}。`, `${whom.zh}是${who.zh}的${relZh}。`],
        ...splitPhrasings([`${who.zh}的${relZh}是谁？`, `${who.zh}的${relZh}叫什么名字？`,
          `谁是${who.zh}的${relZh}？`, `你知道${who.zh}的${relZh}是谁吗？`], i + 1),
        answer: `${who.zh}的${relZh}是${whom.zh}。`, wrong: `${who.zh}的${relZh}是${w.zh}。`, keywords: [whom.zh],
      },
    };
  });
  const pets = CHILDREN.map(({ kid: owner, pet: { kind: [kind, kindZh], name } }, i): Fact => {
    const w = CHILDREN[(i + 1) % CHILDREN.length].pet.name;
    return {
      id: `pet-${owner.en.toLowerCase()}`, topic: 'family',
      en: {
        statements: [`${owner.en} has a ${kind} named ${name.en}.`, `${name.en} is ${owner.en}'s ${kind}.`],
        ...splitPhrasings([`What is the name of ${owner.en}'s ${kind}?`, `What is ${owner.en}'s ${kind} called?`,
          `How is ${owner.en}'s ${kind} named?`, `Tell me the name of the ${kind} that ${owner.en} has.`], i),
        answer: `${owner.en}'s ${kind} is called ${name.en}.`, wrong: `${owner.en}'s ${kind} is called ${w.en}.`,
        keywords: [name.en],
      },
      zh: {
        statements: [`${owner.zh}有一只${kindZh}，名字叫${name.zh}。`, `${name.zh}是${owner.zh}的${kindZh}。`],
        ...splitPhrasings([`${owner.zh}的${kindZh}叫什么名字？`, `${owner.zh}的${kindZh}叫什么？`,
          `${owner.zh}养的${kindZh}名字是什么？`, `你知道${owner.zh}的${kindZh}叫什么吗？`], i + 1),
        answer: `${owner.zh}的${kindZh}叫${name.zh}。`, wrong: `${owner.zh}的${kindZh}叫${w.zh}。`, keywords: [name.zh],
      },
    };
  });
  return [...relations, ...pets];
}

// ---- arithmetic ---------------------------------------------------------------------------------------------------

function arithmeticFacts(): Fact[] {
  const facts: Fact[] = [];
  const add = (a: number, b: number, op: 'plus' | 'minus') => {
    const r = op === 'plus' ? a + b : a - b;
    const opZh = op === 'plus' ? '加' : '减';
    const w = r + 1;
    const i = facts.length;
    facts.push({
      id: `${op}-${a}-${b}`, topic: 'arithmetic',
      en: {
        statements: [`${a} ${op} ${b} is ${r}.`, `${a} ${op} ${b} equals ${r}.`],
        ...splitPhrasings([`What is ${a} ${op} ${b}?`, `${a} ${op} ${b} equals what?`,
          `How much is ${a} ${op} ${b}?`, `Please compute ${a} ${op} ${b}.`], i),
        answer: `${a} ${op} ${b} is ${r}.`, wrong: `${a} ${op} ${b} is ${w}.`, keywords: [String(r)],
      },
      zh: {
        statements: [`${a}${opZh}${b}等于${r}。`, `${a}${opZh}${b}的结果是${r}。`],
        ...splitPhrasings([`${a}${opZh}${b}等于几？`, `${a}${opZh}${b}等于多少？`,
          `${a}${opZh}上${b}是多少？`, `请算一算${a}${opZh}${b}。`], i + 1),
        answer: `${a}${opZh}${b}等于${r}。`, wrong: `${a}${opZh}${b}等于${w}。`, keywords: [String(r)],
      },
    });
  };
  for (let a = 1; a <= 6; a++) for (let b = a; b <= 6; b++) add(a, b, 'plus');
  for (const [a, b] of [[5, 2], [6, 1], [6, 3], [7, 2], [7, 4], [8, 3], [8, 5], [9, 4], [10, 5]]) add(a, b, 'minus');
  return facts;
}

// ---- units of time -----------------------------------------------------------------------------------------------

/** [English whole ("a week"), English part ("days"), count, Chinese whole, Chinese part with its measure word] */
const TIME_UNITS: [string, string, number, string, string][] = [
  ['a week', 'days', 7, '一个星期', '天'], ['a year', 'months', 12, '一年', '个月'],
  ['a day', 'hours', 24, '一天', '个小时'], ['an hour', 'minutes', 60, '一个小时', '分钟'],
  ['a minute', 'seconds', 60, '一分钟', '秒'], ['a year', 'seasons', 4, '一年', '个季节'],
];

function timeFacts(): Fact[] {
  return TIME_UNITS.map(([whole, part, n, wholeZh, partZh], i): Fact => {
    const one = whole.replace(/^an? /, 'one ');
    const w = n === 12 ? 10 : 12;
    return {
      id: `time-${part}-in-${whole.replace(/^an? /, '')}`, topic: 'time',
      en: {
        statements: [`${capitalize(whole)} has ${n} ${part}.`, `There are ${n} ${part} in ${whole}.`],
        ...splitPhrasings([`How many ${part} are in ${whole}?`, `How many ${part} does ${whole} have?`,
          `What is the number of ${part} in ${one}?`, `Tell me how many ${part} there are in ${whole}.`], i),
        answer: `${capitalize(whole)} has ${n} ${part}.`, wrong: `${capitalize(whole)} has ${w} ${part}.`,
        keywords: [String(n)],
      },
      zh: {
        statements: [`${wholeZh}有${n}${partZh}。`, `${wholeZh}一共是${n}${partZh}。`],
        ...splitPhrasings([`${wholeZh}有几${partZh}？`, `${wholeZh}有多少${partZh}？`, `${wholeZh}一共有多少${partZh}？`,
          `你知道${wholeZh}有几${partZh}吗？`], i + 1),
        answer: `${wholeZh}有${n}${partZh}。`, wrong: `${wholeZh}有${w}${partZh}。`, keywords: [String(n)],
      },
    };
  });
}

/** Every fact of the demo world, in a fixed order. */
export function demoFacts(): Fact[] {
  return [...capitalFacts(), ...animalFacts(), ...colorFacts(), ...familyFacts(), ...arithmeticFacts(),
    ...timeFacts()];
}

export { ANIMAL_FOODS };
